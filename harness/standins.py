"""Random-weight stand-in model files that the stock loaders of ComfyUI 0.3.75 and 0.33 accept, made at test time.

They are written once into a cache folder, `.runtime/<ComfyUI version>/standins/<VERSION>/models/`, laid out like
ComfyUI's own models folder, and reused by later runs; bump VERSION when the recipe changes and they are rebuilt.
Nothing here is ever committed. All weights are seeded, so the files are the same on every machine.

Files (names are what workflows refer to after stand-in substitution, see harness/workflow_format.py):

  checkpoints/rt_sd15_small.safetensors     CheckpointLoaderSimple. The smallest UNet that ComfyUI still
                                            detects as SD1.5 (model_channels 320, context_dim 768, one level,
                                            one res block, 26M params) + a full-size random CLIP-L (its
                                            config is fixed) + a random TAESD (4 latent channels) as the VAE.
  diffusion_models/rt_sd3_tiny.safetensors  UNETLoader. Tiny SD3 MMDiT (depth 2, hidden 128), shape-detected;
                                            context 4096 wide, pooled 2048 wide: exactly what CLIPLoader with
                                            rt_clip_l and type "sd3" returns (CLIP-L padded to 4096, zero CLIP-G
                                            pooled part).
  diffusion_models/rt_wan21_tiny.safetensors UNETLoader. Tiny Wan 2.1 T2V (dim 128, 2 blocks); text_dim 4096
                                            (the only width 0.3.75's detection allows), also fed by
                                            CLIPLoader(rt_clip_l, type "sd3").
  text_encoders/rt_clip_l.safetensors       CLIPLoader: the same random CLIP-L as in the checkpoint.
  vae/rt_taesd.safetensors                  VAELoader: the checkpoint's TAESD (4 latent channels), for UNet graphs
                                            that load a separate VAE.
  vae/rt_taesd16.safetensors                VAELoader: TAESD with 16 latent channels, for 4-D 16-channel
                                            latents (SD3, and the Flux stand-in).
  vae/rt_wan21_vae.safetensors              VAELoader: a Wan 2.1 video VAE at width 8 (ComfyUI reads the width
                                            from the weights), for 5-D Wan latents; decodes video frames.

Use `models_dir()` to get (and build on first use) the folder. Building runs in a subprocess
(`python harness/standins.py --build DIR`) so the calling process does not have to import ComfyUI.
"""
import fcntl
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VERSION = "v3"

SD15_CHECKPOINT = "rt_sd15_small.safetensors"
SD3_UNET = "rt_sd3_tiny.safetensors"
WAN21_UNET = "rt_wan21_tiny.safetensors"
CLIP_L = "rt_clip_l.safetensors"
CLIP_TYPE = "sd3"  # CLIPLoader type that makes rt_clip_l fit both DiT stand-ins
VAE_4CH = "rt_taesd.safetensors"
VAE_16CH = "rt_taesd16.safetensors"
VAE_WAN21 = "rt_wan21_vae.safetensors"

# LoRAs (generic "diffusion_model.<key>.lora_up/lora_down" format) on each stand-in's 2-D weights, written into
# models/loras/ on first use (see ensure_loras); not part of FILES, so adding them rebuilds nothing.
LORA_SOURCES = {
    "rt_sd15_small_lora.safetensors": ("checkpoints", SD15_CHECKPOINT, "model.diffusion_model."),
    "rt_sd3_tiny_lora.safetensors": ("diffusion_models", SD3_UNET, ""),
    "rt_wan21_tiny_lora.safetensors": ("diffusion_models", WAN21_UNET, ""),
}
LORA_UNET, LORA_DIT, LORA_WAN21 = LORA_SOURCES

FILES = {
    "checkpoints": [SD15_CHECKPOINT],
    "diffusion_models": [SD3_UNET, WAN21_UNET],
    "text_encoders": [CLIP_L],
    "vae": [VAE_4CH, VAE_16CH, VAE_WAN21],
}


def cache_root() -> str:
    """GZ_STANDINS_DIR, else standins/ of the running runtime (.runtime/<version>/: each ComfyUI builds its own)."""
    runtime = os.path.dirname(sys.prefix)
    if not runtime.startswith(os.path.join(REPO, ".runtime") + os.sep):
        runtime = os.path.join(REPO, ".runtime")
    return os.environ.get("GZ_STANDINS_DIR") or os.path.join(runtime, "standins", VERSION)


def _complete(root: str) -> bool:
    marker = os.path.join(root, "DONE")
    if not os.path.isfile(marker):
        return False
    with open(marker) as f:
        if f.read().strip() != VERSION:
            return False
    return all(os.path.isfile(os.path.join(root, "models", sub, name))
               for sub, names in FILES.items() for name in names)


def models_dir(python: str | None = None) -> str:
    """The stand-ins' models folder, built first if it is missing or from another VERSION (a few seconds)."""
    root = cache_root()
    if _complete(root):
        ensure_loras(os.path.join(root, "models"))
        return os.path.join(root, "models")
    parent = os.path.dirname(root)
    os.makedirs(parent, exist_ok=True)
    with open(os.path.join(parent, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder at a time (parallel test runs)
        if not _complete(root):
            tmp = f"{root}.tmp{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            cmd = [python or sys.executable, os.path.abspath(__file__), "--build", tmp]
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                shutil.rmtree(tmp, ignore_errors=True)
                raise RuntimeError(f"building stand-in models failed:\n{proc.stdout}\n{proc.stderr}")
            shutil.rmtree(root, ignore_errors=True)
            os.replace(tmp, root)
            if not os.environ.get("GZ_STANDINS_DIR"):  # drop other versions' files (~550 MB each)
                for entry in os.listdir(parent):
                    path = os.path.join(parent, entry)
                    if entry != VERSION and not entry.startswith(".") and os.path.isdir(path):
                        shutil.rmtree(path, ignore_errors=True)
    ensure_loras(os.path.join(root, "models"))
    return os.path.join(root, "models")


def ensure_loras(models: str) -> None:
    """Writes the stand-in LoRAs (rank 4, seeded, a few hundred kB each) next to the models if they are missing."""
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import save_file
    for name, (folder, source, prefix) in LORA_SOURCES.items():
        path = os.path.join(models, "loras", name)
        if os.path.isfile(path):
            continue
        rng, tensors = np.random.default_rng(7), {}
        with safe_open(os.path.join(models, folder, source), framework="np") as f:
            for key in sorted(f.keys()):
                shape = f.get_slice(key).get_shape()
                if key.startswith(prefix) and key.endswith(".weight") and len(shape) == 2:
                    lora = "diffusion_model." + key[len(prefix):-len(".weight")]
                    tensors[lora + ".lora_up.weight"] = (0.1 * rng.standard_normal((shape[0], 4))).astype(np.float16)
                    tensors[lora + ".lora_down.weight"] = (0.1 * rng.standard_normal((4, shape[1]))).astype(np.float16)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp{os.getpid()}"
        save_file(tensors, tmp)
        os.replace(tmp, path)


# --------------------------------------------------------------------------------------------------------------
# building (runs in the subprocess, imports ComfyUI in library mode)
# --------------------------------------------------------------------------------------------------------------

def _unet_state_dict(cls, config: dict, seed: int):
    import torch
    from random_init import init_random_
    mc = cls(dict(config))
    mc.set_inference_dtype(torch.float32, None)
    model = mc.get_model({}, "", device=torch.device("cpu"))
    return init_random_(model.diffusion_model, seed).state_dict()


def _save(sd: dict, path: str):
    import torch
    import safetensors.torch
    os.makedirs(os.path.dirname(path), exist_ok=True)
    sd = {k: v.detach().to(torch.float16).contiguous() for k, v in sd.items() if v.dtype.is_floating_point}
    safetensors.torch.save_file(sd, path)
    print(f"{os.path.basename(path)}: {sum(v.numel() for v in sd.values()):,} params, "
          f"{os.path.getsize(path) / 2**20:.1f} MiB", flush=True)


SD15_MIN = dict(
    use_checkpoint=False, image_size=32, use_spatial_transformer=True, legacy=False, adm_in_channels=None,
    in_channels=4, out_channels=4, model_channels=320, num_res_blocks=[1], channel_mult=[1],
    transformer_depth=[1], transformer_depth_output=[1, 1], transformer_depth_middle=1,
    use_linear_in_transformer=False, context_dim=768, use_temporal_resblock=False, use_temporal_attention=False,
)
SD3_TINY = dict(
    in_channels=16, out_channels=16, patch_size=2, depth=2,  # hidden = 64 * depth, heads = depth
    input_size=None, adm_in_channels=2048, pos_embed_max_size=32, num_patches=1024,
    context_embedder_config={"target": "torch.nn.Linear", "params": {"in_features": 4096, "out_features": 128}},
    pos_embed_scaling_factor=None, x_block_self_attn_layers=[],
)
WAN21_TINY = dict(
    image_model="wan2.1", model_type="t2v", dim=128, out_dim=16, num_heads=1, ffn_dim=256, num_layers=2,
    patch_size=(1, 2, 2), freq_dim=256, window_size=(-1, -1), qk_norm=True, cross_attn_norm=True, eps=1e-6,
    in_dim=16, text_dim=4096,
)


def build(root: str):
    t0 = time.time()
    sys.path.insert(0, HERE)
    import runtime_paths
    runtime_paths.use_comfyui()
    from random_init import init_random_
    import torch
    import comfy.model_management  # noqa: F401  (after args.cpu)
    import comfy.supported_models as sm
    import comfy.sd1_clip
    import comfy.taesd.taesd
    import comfy.ldm.wan.vae
    import comfy.sd

    models = os.path.join(root, "models")
    unet = _unet_state_dict(sm.SD15, SD15_MIN, 0)
    clip = comfy.sd1_clip.SD1ClipModel()  # CLIP-L from comfy/sd1_clip_config.json
    clip_sd = {k: v for k, v in init_random_(clip.clip_l.transformer, 1).state_dict().items()
               if "position_ids" not in k}
    taesd = init_random_(comfy.taesd.taesd.TAESD(latent_channels=4), 2).state_dict()
    taesd["vae_scale"], taesd["vae_shift"] = torch.tensor(1.0), torch.tensor(0.0)
    ckpt = {"model.diffusion_model." + k: v for k, v in unet.items()}
    ckpt.update({"cond_stage_model.transformer." + k: v for k, v in clip_sd.items()})
    ckpt.update({"first_stage_model." + k: v for k, v in taesd.items()})
    _save(ckpt, os.path.join(models, "checkpoints", SD15_CHECKPOINT))
    _save(clip_sd, os.path.join(models, "text_encoders", CLIP_L))
    _save(taesd, os.path.join(models, "vae", VAE_4CH))
    del ckpt, clip

    _save(_unet_state_dict(sm.SD3, SD3_TINY, 3), os.path.join(models, "diffusion_models", SD3_UNET))
    _save(_unet_state_dict(sm.WAN21_T2V, WAN21_TINY, 4), os.path.join(models, "diffusion_models", WAN21_UNET))

    taesd16 = init_random_(comfy.taesd.taesd.TAESD(latent_channels=16), 5).state_dict()
    taesd16["vae_scale"], taesd16["vae_shift"] = torch.tensor(1.0), torch.tensor(0.0)
    _save(taesd16, os.path.join(models, "vae", VAE_16CH))
    wan_vae = comfy.ldm.wan.vae.WanVAE(dim=8, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, attn_scales=[],
                                       temperal_downsample=[False, True, True], dropout=0.0)
    _save(init_random_(wan_vae, 6).state_dict(), os.path.join(models, "vae", VAE_WAN21))

    with open(os.path.join(root, "DONE"), "w") as f:
        f.write(VERSION + "\n")
    print(f"stand-ins built in {time.time() - t0:.1f} s", flush=True)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--build":
        build(sys.argv[2])
    else:
        print(models_dir())
