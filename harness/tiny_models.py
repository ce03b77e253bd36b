"""Tiny random-weight models of nine real architectures, built through ComfyUI's own model classes (library mode).

Adapted from ../shared/reference/tiny_models.py. Everything is seeded, so outputs are deterministic.
"""

import dataclasses
import importlib

import runtime_paths
from random_init import init_random_
from tiny_families import TINY_FAMILIES

runtime_paths.use_comfyui()

import torch  # noqa: E402

import comfy.model_management  # noqa: E402,F401
import comfy.model_patcher  # noqa: E402
import comfy.patcher_extension  # noqa: E402
import comfy.sample  # noqa: E402
import comfy.samplers  # noqa: E402
import comfy.supported_models as sm  # noqa: E402

CPU = torch.device("cpu")
CTX = 64
POOLED = 32

_SD15 = dict(use_checkpoint=False, image_size=32, use_spatial_transformer=True, legacy=False, adm_in_channels=None,
             in_channels=4, out_channels=4, model_channels=32, num_res_blocks=[1, 1], channel_mult=[1, 2],
             transformer_depth=[1, 1], transformer_depth_output=[1, 1, 1, 1], transformer_depth_middle=1,
             use_linear_in_transformer=False, context_dim=CTX, use_temporal_resblock=False,
             use_temporal_attention=False)
_SDXL = dict(_SD15, use_linear_in_transformer=True, adm_in_channels=POOLED + 6 * 256, num_classes="sequential",
             transformer_depth=[0, 1], transformer_depth_output=[0, 0, 1, 1])
_FLUX = dict(image_model="flux", in_channels=16, out_channels=16, vec_in_dim=POOLED, context_in_dim=CTX,
             hidden_size=64, mlp_ratio=2.0, num_heads=2, depth=2, depth_single_blocks=2, axes_dim=[8, 12, 12],
             theta=10000, patch_size=2, qkv_bias=True, guidance_embed=True)
_FLUX2 = dict(image_model="flux2", in_channels=128, out_channels=128, vec_in_dim=None, context_in_dim=CTX,
              hidden_size=64, mlp_ratio=3.0, num_heads=2, depth=2, depth_single_blocks=2, axes_dim=[8, 8, 8, 8],
              theta=2000, patch_size=1, qkv_bias=False, guidance_embed=True, global_modulation=True,
              mlp_silu_act=True, ops_bias=False, default_ref_method="index", ref_index_scale=10.0)
_CHROMA = dict(image_model="chroma", in_channels=64, out_channels=64, context_in_dim=CTX, hidden_size=64,
               mlp_ratio=2.0, num_heads=2, depth=2, depth_single_blocks=2, axes_dim=[8, 12, 12], theta=10000,
               patch_size=2, qkv_bias=True, in_dim=64, out_dim=64, hidden_dim=64, n_layers=2)
_SD3 = dict(in_channels=16, out_channels=16, patch_size=2, depth=2, input_size=None, adm_in_channels=POOLED,
            pos_embed_max_size=16, num_patches=256, pos_embed_scaling_factor=None, x_block_self_attn_layers=[],
            context_embedder_config={"target": "torch.nn.Linear", "params": {"in_features": CTX, "out_features": 128}})
_WAN = dict(image_model="wan2.1", model_type="t2v", dim=64, out_dim=16, num_heads=2, ffn_dim=128, num_layers=2,
            patch_size=(1, 2, 2), freq_dim=32, window_size=(-1, -1), qk_norm=True, cross_attn_norm=True, eps=1e-6,
            in_dim=16, text_dim=CTX)
_QWEN = dict(image_model="qwen_image", in_channels=64, out_channels=16, num_layers=2, attention_head_dim=32,
             num_attention_heads=2, joint_attention_dim=CTX, axes_dims_rope=(8, 12, 12))
_LUMINA2 = dict(image_model="lumina2", patch_size=2, in_channels=16, dim=64, n_layers=2, n_refiner_layers=1,
                n_heads=2, n_kv_heads=1, qk_norm=True, cap_feat_dim=CTX, axes_dims=[8, 12, 12],
                axes_lens=[300, 64, 64], multiple_of=16, ffn_dim_multiplier=2.0)

# name: (ComfyUI model config class, unet_config, latent shape of one sample, pooled width or None)
FAMILIES = {
    "sd15": (sm.SD15, _SD15, (4, 8, 8), None),
    "sdxl": (sm.SDXL, _SDXL, (4, 8, 8), POOLED),
    "sd3": (sm.SD3, _SD3, (16, 8, 8), POOLED),
    "flux": (sm.Flux, _FLUX, (16, 8, 8), POOLED),
    "flux2": (sm.Flux2, _FLUX2, (128, 4, 4), None),
    "chroma": (sm.Chroma, _CHROMA, (16, 8, 8), None),
    "qwen_image": (sm.QwenImage, _QWEN, (16, 1, 8, 8), None),
    "lumina2": (sm.Lumina2, _LUMINA2, (16, 8, 8), None),
    "wan21": (sm.WAN21_T2V, _WAN, (16, 2, 8, 8), None),
}
# the families of harness/tiny_families/ whose config class this ComfyUI has
SPECS = {spec.key: spec for spec in TINY_FAMILIES if hasattr(sm, spec.config)}
FAMILIES.update({key: (getattr(sm, spec.config), spec.unet_config, spec.latent, spec.pooled)
                 for key, spec in SPECS.items()})
UNETS = ("sd15", "sdxl")
DITS = tuple(f for f in FAMILIES if f not in UNETS)


# Fields ComfyUI 0.33 made required in the DiT params dataclasses, with the values its model detection gives real
# checkpoints; set only where the running ComfyUI's dataclass has the field (0.3.75 has none of them).
_NEW_PARAM_FIELDS = {"flux": ("comfy.ldm.flux.model", "FluxParams", {"txt_ids_dims": []}),
                     "flux2": ("comfy.ldm.flux.model", "FluxParams", {"txt_ids_dims": [3]}),
                     "chroma": ("comfy.ldm.chroma.model", "ChromaParams", {"txt_ids_dims": [], "vec_in_dim": None})}


def unet_config_for(family: str, **overrides) -> dict:
    """The family's tiny unet_config for the running ComfyUI (its newer required fields filled in)."""
    config = dict(FAMILIES[family][1], **overrides)
    new_fields = SPECS[family].new_fields if family in SPECS else _NEW_PARAM_FIELDS.get(family)
    if new_fields:
        module, name, values = new_fields
        fields = {f.name for f in dataclasses.fields(getattr(importlib.import_module(module), name))}
        config.update({k: v for k, v in values.items() if k in fields and k not in config})
    return config


def make_model(family: str, seed: int = 0, dtype: torch.dtype = torch.float32,
               **unet_config_overrides) -> comfy.model_patcher.ModelPatcher:
    """A tiny random-weight model of a family; unet_config_overrides vary it (e.g. lumina2 with
    pad_tokens_multiple=12: the padded NextDiT variant, 7 text tokens + 5 padding, 16 image tokens + 8 padding)."""
    config = FAMILIES[family][0](unet_config_for(family, **unet_config_overrides))
    config.set_inference_dtype(dtype, None)
    model = config.get_model({}, "", device=CPU)
    init_random_(model.diffusion_model, seed)
    return comfy.model_patcher.ModelPatcher(model, load_device=CPU, offload_device=CPU)


def make_conds(family: str, seed: int = 1, tokens: int = 7):
    """Positive and negative conditioning lists, as CLIPTextEncode would give them."""
    pooled = FAMILIES[family][3]
    spec = SPECS.get(family)
    g = torch.Generator().manual_seed(seed)

    def one():
        extra = {"pooled_output": torch.randn(1, pooled, generator=g) if pooled else None}
        if family in ("flux", "flux2"):
            extra["guidance"] = 3.5
        if spec and spec.context_fn:
            context = spec.context_fn(g, tokens)
        else:
            context = torch.randn(1, tokens, spec.context_dim if spec else CTX, generator=g)
        if spec and spec.extra_cond:
            extra.update(spec.extra_cond(g, tokens) if spec.extra_cond_tokens else spec.extra_cond(g))
        return [[context, extra]]
    return one(), one()


def adapter(family: str):
    """The family adapter that covers a tiny family's ComfyUI config class."""
    from guidance_zoo.attention_patches.families import BY_CONFIG
    return BY_CONFIG[FAMILIES[family][0].__name__]


def supporting(method: str, families=None) -> tuple[str, ...]:
    """The families (all by default) whose adapter does not refuse `method` (its METHOD_INFO name)."""
    return tuple(f for f in (FAMILIES if families is None else families) if adapter(f).supports(method))


def refusing(method: str, families=None) -> tuple[str, ...]:
    """The families (all by default) whose adapter refuses `method`."""
    return tuple(f for f in (FAMILIES if families is None else families) if not adapter(f).supports(method))


def latent(family: str, batch: int = 1) -> torch.Tensor:
    return torch.zeros((batch,) + FAMILIES[family][2])


def noise_for(family: str, seeds: list[int]) -> torch.Tensor:
    """Noise for a batch, one seed per sample, so batch-2 runs can be compared with batch-1 runs."""
    shape = (1,) + FAMILIES[family][2]
    return torch.cat([comfy.sample.prepare_noise(torch.zeros(shape), s) for s in seeds])


def ksample(model, family: str, steps: int = 3, cfg: float = 4.0, seeds=(0,), sampler: str = "euler",
            conds=None, callback=None) -> torch.Tensor:
    """What the KSampler node calls: comfy.sample.sample (callback(step, x0, x, total_steps) after each step)."""
    positive, negative = conds or make_conds(family)
    noise = noise_for(family, list(seeds))
    return comfy.sample.sample(model, noise, steps, cfg, sampler, "normal", positive, negative,
                               latent(family, len(seeds)), denoise=1.0, disable_pbar=True, seed=seeds[0],
                               callback=callback)


def guider_sample(model, family: str, steps: int = 3, cfg: float = 4.0, seeds=(0,), sampler: str = "euler",
                  conds=None) -> torch.Tensor:
    """What SamplerCustomAdvanced does: CFGGuider + a KSAMPLER object."""
    positive, negative = conds or make_conds(family)
    guider = comfy.samplers.CFGGuider(model)
    guider.set_conds(positive, negative)
    guider.set_cfg(cfg)
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "simple", steps)
    return guider.sample(noise_for(family, list(seeds)), latent(family, len(seeds)),
                         comfy.samplers.sampler_object(sampler), sigmas, disable_pbar=True, seed=seeds[0])


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    """The largest absolute elementwise difference."""
    return float((a - b).abs().max())


def assert_close(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-4):
    """a equals b up to rel, relative per element and also relative to b's largest magnitude."""
    torch.testing.assert_close(a, b, rtol=rel, atol=rel * float(b.abs().max()))


def assert_differs(a: torch.Tensor, b: torch.Tensor, rel: float = 1e-3):
    """a differs from b somewhere by more than rel times b's largest magnitude (the method did something)."""
    diff, bound = max_diff(a, b), rel * float(b.abs().max())
    assert diff > bound, f"differs by only {diff:.3g} (must exceed {bound:.3g})"


def assert_batch_equals_single_runs(model, family: str, seeds=(5, 6), rel: float = 1e-4, **sample_args):
    """ksample of a batch (one seed per sample) equals each sample sampled alone: no cross-talk within a batch."""
    both = ksample(model, family, seeds=seeds, **sample_args)
    for i, seed in enumerate(seeds):
        assert_close(both[i:i + 1], ksample(model, family, seeds=(seed,), **sample_args), rel)


class CallCounter:
    """Counts model evaluations (apply_model calls and the samples in them) through an APPLY_MODEL wrapper."""

    def __init__(self):
        self.calls = 0
        self.samples = 0

    def __call__(self, executor, x, *args, **kwargs):
        self.calls += 1
        self.samples += x.shape[0]
        return executor(x, *args, **kwargs)


def counted(model) -> tuple[comfy.model_patcher.ModelPatcher, CallCounter]:
    counter = CallCounter()
    clone = model.clone()
    clone.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "guidance_zoo_test_counter", counter)
    return clone, counter
