"""The bundled workflows of the video families (HunyuanVideo 1.5, Wan 2.2 TI2V 5B and 14B two-expert, LTX-2), loader
files named as in the official ComfyUI examples; the guidance part comes from make_workflows.py."""
from workflow_families import (NEGATIVE, NO_CFG, POSITIVE, SEED, decode_and_save, finish, here_text, ksampler, loader,
                               method, text, with_negative)
from workflow_layout import Graph
from workflow_notes import node_info

MODEL, CLIP, VAE, LATENT = ("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE"), ("LATENT", "LATENT")
COND = ("CONDITIONING", "CONDITIONING")
UMT5 = ["umt5_xxl_fp8_e4m3fn_scaled.safetensors", "wan", "default"]


def shifted(g: Graph, unet: dict, kind: str, shift: float, title=None) -> dict:
    """A ModelSampling* node (the family's timestep shift) under its loader."""
    node = g.node(kind, [shift], inputs=[("model", "MODEL")], outputs=[MODEL], below=unet, title=title)
    g.link(unet, 0, node, "model")
    return node


def single(name: str, family: str, loaders, kind: str, widgets: list, cfg: float, sampling: tuple, latent,
           nag_prompt: str | None = None, reason: str = "") -> dict:
    """loaders(g) -> (model to patch, clip, vae); latent(g, vae) -> latent node. One KSampler, decode, save."""
    g = Graph()
    model, clip, vae = loaders(g)
    patched = with_negative(g, model, kind, widgets, (clip, 0), nag_prompt)
    pos = text(g, (clip, 0), POSITIVE, True)
    neg = text(g, (clip, 0), "" if cfg == 1 else NEGATIVE, False,
               "CLIP Text Encode (Negative Prompt, unused at cfg 1)" if cfg == 1 else None)
    ks = ksampler(g, patched, pos, neg, latent(g, vae), sampling, cfg)
    decode_and_save(g, (ks, 0), (vae, 0), f"guidance_zoo/{name}")
    return finish(g, name, family, [(kind, widgets)], here_text(cfg, sampling, reason))


def hunyuan_video15(name: str, kind: str, widgets: list, cfg: float = 6.0) -> dict:
    """HunyuanVideo 1.5 720p t2v: Qwen2.5-VL + ByT5 (DualCLIPLoader hunyuan_video_15), shift 7, 20 euler steps."""
    def loaders(g):
        unet = loader(g, "UNETLoader", ["hunyuanvideo1.5_720p_t2v_fp16.safetensors", "default"], [MODEL])
        clip = loader(g, "DualCLIPLoader", ["qwen_2.5_vl_7b_fp8_scaled.safetensors",
                                            "byt5_small_glyphxl_fp16.safetensors", "hunyuan_video_15", "default"],
                      [CLIP])
        vae = loader(g, "VAELoader", ["hunyuanvideo15_vae_fp16.safetensors"], [VAE])
        return shifted(g, unet, "ModelSamplingSD3", 7.0), clip, vae
    return single(name, "HunyuanVideo 1.5 T2V 720p", loaders, kind, widgets, cfg, (20, "euler", "simple"),
                  lambda g, vae: g.node("EmptyHunyuanVideo15Latent", [848, 480, 121, 1], outputs=[LATENT]))


def wan22_5b(name: str, kind: str, widgets: list, cfg: float = 5.0) -> dict:
    """Wan 2.2 TI2V 5B as text-to-video (Wan22ImageToVideoLatent without a start image), Wan 2.2 VAE, shift 8."""
    def loaders(g):
        unet = loader(g, "UNETLoader", ["wan2.2_ti2v_5B_fp16.safetensors", "default"], [MODEL])
        clip = loader(g, "CLIPLoader", UMT5, [CLIP])
        vae = loader(g, "VAELoader", ["wan2.2_vae.safetensors"], [VAE])
        return shifted(g, unet, "ModelSamplingSD3", 8.0), clip, vae

    def latent(g, vae):
        node = g.node("Wan22ImageToVideoLatent", [1280, 704, 121, 1], inputs=[("vae", "VAE"), ("start_image", "IMAGE")],
                      outputs=[LATENT])
        g.link(vae, 0, node, "vae")
        return node
    return single(name, "Wan 2.2 TI2V 5B", loaders, kind, widgets, cfg, (20, "uni_pc", "simple"), latent,
                  reason="For image-to-video, link a LoadImage to start_image.")


def advanced(g: Graph, model, pos, neg, latent, widgets: list) -> dict:
    """A KSamplerAdvanced (widgets: add_noise, seed, control, steps, cfg, sampler, scheduler, start, end, leftover)."""
    node = g.node("KSamplerAdvanced", widgets, inputs=[("model", "MODEL"), ("positive", "CONDITIONING"),
                                                       ("negative", "CONDITIONING"), ("latent_image", "LATENT")],
                  outputs=[LATENT])
    for source, input_name in ((model, "model"), (pos, "positive"), (neg, "negative"), (latent, "latent_image")):
        g.link(source, 0, node, input_name)
    return node


def wan22_14b_two_experts(name: str, kind: str, widgets: list, cfg: float = 3.5, steps: int = 20) -> dict:
    """Wan 2.2 14B T2V: the high-noise expert samples steps 0-10 (returning leftover noise), the low-noise expert
    the rest, as in the official example; the method node patches each expert."""
    g = Graph()
    experts = []
    for which in ("high", "low"):
        unet = loader(g, "UNETLoader", [f"wan2.2_t2v_{which}_noise_14B_fp8_scaled.safetensors", "default"], [MODEL],
                      f"Load Diffusion Model ({which}-noise expert)")
        experts.append(method(g, kind, widgets, model=(shifted(g, unet, "ModelSamplingSD3", 8.0), 0)))
    clip = loader(g, "CLIPLoader", UMT5, [CLIP])
    vae = loader(g, "VAELoader", ["wan_2.1_vae.safetensors"], [VAE])
    pos, neg = text(g, (clip, 0), POSITIVE, True), text(g, (clip, 0), NEGATIVE, False)
    latent = g.node("EmptyHunyuanLatentVideo", [1280, 704, 121, 1], outputs=[LATENT], below=neg)
    half = steps // 2
    high = advanced(g, experts[0], pos, neg, latent,
                    ["enable", SEED, "fixed", steps, cfg, "euler", "simple", 0, half, "enable"])
    low = advanced(g, experts[1], pos, neg, high,
                   ["disable", SEED, "fixed", steps, cfg, "euler", "simple", half, 10000, "disable"])
    decode_and_save(g, (low, 0), (vae, 0), f"guidance_zoo/{name}")
    display = node_info()[kind]["display_name"]
    here = (f"This workflow: two KSamplerAdvanced at cfg {cfg:g}, {steps} euler/simple steps split at step {half}: "
            f"the high-noise expert adds the noise and returns the leftover noise, the low-noise expert finishes; "
            f"seed fixed. {display} patches both experts with the same settings (one node per expert: set them "
            "apart to guide the layout phase and the detail phase differently).")
    return finish(g, name, "Wan 2.2 T2V 14B (two experts)", [(kind, widgets)], here)


NEEDS_033 = "0.33.0"
LTX2_SIGMAS = "1., 0.99375, 0.9875, 0.98125, 0.975, 0.909375, 0.725, 0.421875, 0.0"


def ltx2_distilled(name: str, kind: str, widgets: list) -> dict:
    """LTX-2 19B distilled (LTXAV: video and audio in one latent) at cfg 1 with the method's attention negative:
    Gemma 3 text encoder, the official 8 manual sigmas, euler_ancestral; video frames and audio saved apart."""
    ckpt_name = "ltx-2-19b-distilled.safetensors"
    g = Graph()
    ckpt = loader(g, "CheckpointLoaderSimple", [ckpt_name], [MODEL, CLIP, VAE])
    clip = loader(g, "LTXAVTextEncoderLoader", ["gemma_3_12B_it.safetensors", ckpt_name, "default"], [CLIP])
    audio_vae = loader(g, "LTXVAudioVAELoader", [ckpt_name], [("Audio VAE", "VAE")])
    patched = with_negative(g, ckpt, kind, widgets, (clip, 0), NEGATIVE)
    pos = text(g, (clip, 0), POSITIVE, True)
    neg = text(g, (clip, 0), "", False, "CLIP Text Encode (Negative Prompt, unused at cfg 1)")
    cond = g.node("LTXVConditioning", [25.0], inputs=[("positive", "CONDITIONING"), ("negative", "CONDITIONING")],
                  outputs=[("positive", "CONDITIONING"), ("negative", "CONDITIONING")])
    g.link(pos, 0, cond, "positive")
    g.link(neg, 0, cond, "negative")
    guider = g.node("CFGGuider", [1.0], inputs=[("model", "MODEL"), ("positive", "CONDITIONING"),
                                                ("negative", "CONDITIONING")], outputs=[("GUIDER", "GUIDER")])
    for source, slot, input_name in ((patched, 0, "model"), (cond, 0, "positive"), (cond, 1, "negative")):
        g.link(source, slot, guider, input_name)
    video = g.node("EmptyLTXVLatentVideo", [768, 512, 97, 1], outputs=[LATENT], below=audio_vae)
    audio = g.node("LTXVEmptyLatentAudio", [97, 25.0, 1], inputs=[("audio_vae", "VAE")], outputs=[LATENT],
                   below=video)
    g.link(audio_vae, 0, audio, "audio_vae")
    av = g.node("LTXVConcatAVLatent", [], inputs=[("video_latent", "LATENT"), ("audio_latent", "LATENT")],
                outputs=[("latent", "LATENT")])
    g.link(video, 0, av, "video_latent")
    g.link(audio, 0, av, "audio_latent")
    parts = [(g.node("RandomNoise", [SEED, "fixed"], outputs=[("NOISE", "NOISE")], below=guider), "noise"),
             (guider, "guider"),
             (g.node("KSamplerSelect", ["euler_ancestral"], outputs=[("SAMPLER", "SAMPLER")], below=guider), "sampler"),
             (g.node("ManualSigmas", [LTX2_SIGMAS], outputs=[("SIGMAS", "SIGMAS")], below=guider), "sigmas"),
             (av, "latent_image")]
    run = g.node("SamplerCustomAdvanced", [], inputs=[("noise", "NOISE"), ("guider", "GUIDER"), ("sampler", "SAMPLER"),
                                                      ("sigmas", "SIGMAS"), ("latent_image", "LATENT")],
                 outputs=[("output", "LATENT"), ("denoised_output", "LATENT")], width=280)
    for source, input_name in parts:
        g.link(source, 0, run, input_name)
    split = g.node("LTXVSeparateAVLatent", [], inputs=[("av_latent", "LATENT")],
                   outputs=[("video_latent", "LATENT"), ("audio_latent", "LATENT")])
    g.link(run, 0, split, "av_latent")
    decode_and_save(g, (split, 0), (ckpt, 2), f"guidance_zoo/{name}")
    sound = g.node("LTXVAudioVAEDecode", [], inputs=[("samples", "LATENT"), ("audio_vae", "VAE")],
                   outputs=[("Audio", "AUDIO")], width=360)
    g.link(split, 1, sound, "samples")
    g.link(audio_vae, 0, sound, "audio_vae")
    save = g.node("SaveAudio", [f"guidance_zoo/{name}"], inputs=[("audio", "AUDIO")], width=360, height=120,
                  below=sound)
    g.link(sound, 0, save, "audio")
    display = node_info()[kind]["display_name"]
    here = ("This workflow: CFGGuider cfg 1, the distilled model's 8 manual sigmas with euler_ancestral, seed fixed; "
            "768x512, 97 frames at 25 fps, audio decoded and saved beside the frames. "
            + NO_CFG["few_step"].format(method=display, steps=8) +
            f" Also needed: `text_encoders/gemma_3_12B_it.safetensors`. Needs ComfyUI {NEEDS_033} (the LTX-2 audio "
            "nodes).")
    workflow = finish(g, name, "LTX-2 19B distilled (audio + video)", [(kind, widgets)], here)
    workflow["extra"]["guidance_zoo"] = {"needs_comfyui": NEEDS_033}  # read by harness/workflow_format.py
    return workflow
