"""The bundled workflows of the newer image families (Z-Image Turbo, HiDream I1, Qwen-Image-Edit, Flux Kontext dev),
loader files named as in the official ComfyUI examples; the guidance part comes from make_workflows.py."""
from workflow_families import (GREEN, NEGATIVE, NO_CFG, RED, SD3_LATENT, decode_and_save, finish, here_text, ksampler,
                               loader, method, text)
from workflow_families_video import CLIP, COND, LATENT, MODEL, VAE, shifted, single
from workflow_layout import Graph
from workflow_notes import node_info

EDIT_PROMPT = "turn the scene into a snowy winter night, keep the composition, the subject and the framing unchanged"
IMAGE = ("IMAGE", "IMAGE")


def zimage_turbo(name: str, kind: str, widgets: list, negative_prompt: str | None = None) -> dict:
    """Z-Image Turbo (distilled, 8 res_multistep steps at cfg 1): Qwen3 4B text encoder (lumina2), AuraFlow shift 3."""
    def loaders(g):
        unet = loader(g, "UNETLoader", ["z_image_turbo_bf16.safetensors", "default"], [MODEL])
        clip = loader(g, "CLIPLoader", ["qwen_3_4b.safetensors", "lumina2", "default"], [CLIP])
        vae = loader(g, "VAELoader", ["ae.safetensors"], [VAE])
        return shifted(g, unet, "ModelSamplingAuraFlow", 3.0), clip, vae
    sampling = (8, "res_multistep", "simple")
    reason = NO_CFG["few_step"].format(method=node_info()[kind]["display_name"], steps=sampling[0])
    return single(name, "Z-Image Turbo", loaders, kind, widgets, 1.0, sampling,
                  lambda g, vae: g.node(*SD3_LATENT, outputs=[LATENT]), negative_prompt, reason)


HIDREAM_ENCODERS = ["clip_l_hidream.safetensors", "clip_g_hidream.safetensors", "t5xxl_fp8_e4m3fn_scaled.safetensors",
                    "llama_3.1_8b_instruct_fp8_scaled.safetensors"]


def hidream_full(name: str, kind: str, widgets: list, cfg: float = 5.0) -> dict:
    """HiDream I1 full (50 uni_pc steps, cfg 5, shift 3) with its four text encoders (QuadrupleCLIPLoader)."""
    def loaders(g):
        unet = loader(g, "UNETLoader", ["hidream_i1_full_fp16.safetensors", "default"], [MODEL])
        clip = loader(g, "QuadrupleCLIPLoader", HIDREAM_ENCODERS, [CLIP])
        vae = loader(g, "VAELoader", ["ae.safetensors"], [VAE])
        return shifted(g, unet, "ModelSamplingSD3", 3.0), clip, vae
    files = ", ".join(f"`text_encoders/{f}`" for f in HIDREAM_ENCODERS)
    return single(name, "HiDream I1 Full", loaders, kind, widgets, cfg, (50, "uni_pc", "simple"),
                  lambda g, vae: g.node(*SD3_LATENT, outputs=[LATENT]),
                  reason=f"Text encoders (QuadrupleCLIPLoader): {files}. HiDream I1 Dev "
                         "(`hidream_i1_dev_bf16.safetensors`, 28 lcm/normal steps, cfg 1, shift 6) takes the "
                         "same method node.")


def input_image(g: Graph, vae: dict, scale_kind: str, scale_widgets: list) -> tuple[dict, dict]:
    """LoadImage -> a resize node -> VAEEncode (in the group); returns (resized image, its latent)."""
    image = g.node("LoadImage", ["example.png", "image"], outputs=[IMAGE, ("MASK", "MASK")],
                   title="Image to edit", height=320, member=True)
    scaled = g.node(scale_kind, scale_widgets, inputs=[("image", "IMAGE")], outputs=[IMAGE], width=260, member=True)
    encode = g.node("VAEEncode", [], inputs=[("pixels", "IMAGE"), ("vae", "VAE")], outputs=[LATENT],
                    width=260, member=True)
    g.link(image, 0, scaled, "image")
    g.link(scaled, 0, encode, "pixels")
    g.link(vae, 0, encode, "vae")
    return scaled, encode


def qwen_edit_text(g: Graph, clip, vae, image, prompt: str, positive: bool) -> dict:
    node = g.node("TextEncodeQwenImageEdit", [prompt], inputs=[("clip", "CLIP"), ("vae", "VAE"), ("image", "IMAGE")],
                  outputs=[COND], title=f"TextEncodeQwenImageEdit ({'Positive' if positive else 'Negative'})",
                  color=GREEN if positive else RED, width=420, height=140)
    for source, input_name in ((clip, "clip"), (vae, "vae"), (image, "image")):
        g.link(source, 0, node, input_name)
    return node


def qwen_image_edit(name: str, kind: str, widgets: list, cfg: float = 4.0) -> dict:
    """Qwen-Image-Edit: the input image enters both through TextEncodeQwenImageEdit (Qwen2.5-VL sees it, its
    latent is the reference) and as the KSampler's starting latent; AuraFlow shift 3, 20 euler steps."""
    g = Graph()
    unet = loader(g, "UNETLoader", ["qwen_image_edit_fp8_e4m3fn.safetensors", "default"], [MODEL])
    clip = loader(g, "CLIPLoader", ["qwen_2.5_vl_7b_fp8_scaled.safetensors", "qwen_image", "default"], [CLIP])
    vae = loader(g, "VAELoader", ["qwen_image_vae.safetensors"], [VAE])
    patched = method(g, kind, widgets, model=(shifted(g, unet, "ModelSamplingAuraFlow", 3.0), 0))
    image, latent = input_image(g, vae, "ImageScaleToTotalPixels", ["lanczos", 1.0, 1])
    pos = qwen_edit_text(g, clip, vae, image, EDIT_PROMPT, True)
    neg = qwen_edit_text(g, clip, vae, image, NEGATIVE, False)
    sampling = (20, "euler", "simple")
    ks = ksampler(g, patched, pos, neg, latent, sampling, cfg)
    decode_and_save(g, (ks, 0), (vae, 0), f"guidance_zoo/{name}")
    reason = ("The official example runs cfg 2.5 behind a CFGNorm node; here the method replaces that step and "
              "allows a higher cfg. Put your picture in ComfyUI/input and pick it in the LoadImage node.")
    return finish(g, name, "Qwen-Image-Edit", [(kind, widgets)], here_text(cfg, sampling, reason))


def flux_kontext(name: str, kind: str, widgets: list) -> dict:
    """Flux Kontext dev at cfg 1: the input image (FluxKontextImageScale -> VAEEncode) is both the ReferenceLatent
    on the prompt and the starting latent; FluxGuidance 2.5, negative = ConditioningZeroOut (unused at cfg 1)."""
    g = Graph()
    unet = loader(g, "UNETLoader", ["flux1-dev-kontext_fp8_scaled.safetensors", "default"], [MODEL])
    clip = loader(g, "DualCLIPLoader", ["clip_l.safetensors", "t5xxl_fp8_e4m3fn_scaled.safetensors", "flux",
                                        "default"], [CLIP])
    vae = loader(g, "VAELoader", ["ae.safetensors"], [VAE])
    patched = method(g, kind, widgets, model=(unet, 0))
    _, latent = input_image(g, vae, "FluxKontextImageScale", [])
    pos = text(g, (clip, 0), EDIT_PROMPT, True)
    reference = g.node("ReferenceLatent", [], inputs=[("conditioning", "CONDITIONING"), ("latent", "LATENT")],
                       outputs=[COND], width=260)
    g.link(pos, 0, reference, "conditioning")
    g.link(latent, 0, reference, "latent")
    guidance = g.node("FluxGuidance", [2.5], inputs=[("conditioning", "CONDITIONING")], outputs=[COND], width=260)
    g.link(reference, 0, guidance, "conditioning")
    zero = g.node("ConditioningZeroOut", [], inputs=[("conditioning", "CONDITIONING")], outputs=[COND],
                  title="ConditioningZeroOut (negative, unused at cfg 1)", width=360)
    g.link(pos, 0, zero, "conditioning")
    sampling = (20, "euler", "simple")
    ks = ksampler(g, patched, guidance, zero, latent, sampling, 1.0)
    decode_and_save(g, (ks, 0), (vae, 0), f"guidance_zoo/{name}")
    display = node_info()[kind]["display_name"]
    reason = NO_CFG["flux"].format(method=display, negative="").replace("FluxGuidance 3.5", "FluxGuidance 2.5")
    return finish(g, name, "Flux Kontext dev", [(kind, widgets)],
                  here_text(1.0, sampling, reason + " Put your picture in ComfyUI/input and pick it in LoadImage."))
