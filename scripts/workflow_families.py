"""The txt2img graphs of the bundled workflows, one builder per model family (SDXL/SD1.5 checkpoints, Flux, Wan,
SD3.5), each taking the guidance part (a method node, or a function building it) from make_workflows.py."""
from workflow_layout import Graph
from workflow_notes import link_inputs, node_info, note, note_height, outputs

POSITIVE = "a lighthouse on a rocky coast at sunset, dramatic clouds, crashing waves, highly detailed photograph"
NEGATIVE = "blurry, low quality, oversaturated, watermark"
SEED = 20241003
GREEN, RED = ("#232", "#353"), ("#322", "#533")
NO_CFG = {
    "flux": "cfg 1: Flux dev is guidance-distilled (FluxGuidance 3.5 feeds its guidance embedding) and is run without "
            "CFG. ComfyUI then skips the uncond pass, so {method} is the only guidance (its cost at cfg 1 above) and "
            "the KSampler's negative prompt is unused{negative}.",
    "few_step": "cfg 1 with {steps} steps, as a distilled or few-step model (a Turbo/CausVid/lightning variant) is "
                "run: no uncond pass, so the negative prompt acts only through {method}, inside attention.",
}


def method(g: Graph, kind: str, widgets: list, **sources) -> dict:
    """A Guidance Zoo node (in the group) with all its link inputs; sources maps input names to (node, slot)."""
    node = g.node(kind, widgets, inputs=link_inputs(kind), outputs=outputs(kind), member=True)
    for name, (source, slot) in sources.items():
        g.link(source, slot, node, name)
    return node


def text(g: Graph, clip: tuple, prompt: str, positive: bool, title: str | None = None, member=False) -> dict:
    node = g.node("CLIPTextEncode", [prompt], inputs=[("clip", "CLIP")], outputs=[("CONDITIONING", "CONDITIONING")],
                  title=title or f"CLIP Text Encode ({'Positive' if positive else 'Negative'} Prompt)",
                  color=GREEN if positive else RED, width=420, height=120, member=member)
    g.link(clip[0], clip[1], node, "clip")
    return node


def loader(g: Graph, kind: str, widgets: list, out: list, title=None, member=False) -> dict:
    return g.node(kind, widgets, outputs=out, title=title, member=member)


def checkpoint(g: Graph, name: str, title=None, member=False) -> dict:
    return loader(g, "CheckpointLoaderSimple", [name], [("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")], title,
                  member)


def decode_and_save(g: Graph, latent: tuple, vae: tuple, prefix: str) -> None:
    dec = g.node("VAEDecode", [], inputs=[("samples", "LATENT"), ("vae", "VAE")], outputs=[("IMAGE", "IMAGE")],
                 width=360)
    save = g.node("SaveImage", [prefix], inputs=[("images", "IMAGE")], width=360, height=360, below=dec)
    g.link(latent[0], latent[1], dec, "samples")
    g.link(vae[0], vae[1], dec, "vae")
    g.link(dec, 0, save, "images")


def ksampler(g: Graph, model, positive, negative, latent, sampling: tuple, cfg: float, member=False) -> dict:
    steps, sampler, scheduler = sampling
    ks = g.node("KSampler", [SEED, "fixed", steps, cfg, sampler, scheduler, 1.0],
                inputs=[("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                        ("latent_image", "LATENT")], outputs=[("LATENT", "LATENT")], member=member)
    for node, name in ((model, "model"), (positive, "positive"), (negative, "negative"), (latent, "latent_image")):
        g.link(node, 0, ks, name)
    return ks


def finish(g: Graph, name: str, family: str, methods: list[tuple[str, list]], here: str) -> dict:
    """The workflow, its group titled by the method nodes and its note written from their metadata."""
    names = " + ".join(node_info()[kind]["display_name"] for kind, _ in methods)
    headline = f"{names} on {family}"
    text_ = note(methods, headline, here, g.nodes)
    return g.finish(name, names, text_, lambda width: note_height(text_, width))


def here_text(cfg: float, sampling: tuple, reason: str = "") -> str:
    steps, sampler, scheduler = sampling
    return f"This workflow: KSampler cfg {cfg:g}, {steps} steps of {sampler}/{scheduler}, seed fixed. {reason}".strip()


def sdxl(name, kind, widgets, cfg, checkpoint_name="sd_xl_base_1.0.safetensors", size=1024,
         sampling=(30, "dpmpp_2m", "karras"), patch=None, positive=POSITIVE, negative=NEGATIVE, family="SDXL"):
    """A checkpoint's txt2img on the stock KSampler. patch(g, ckpt) -> (model node, methods) replaces the one node."""
    g = Graph()
    ckpt = checkpoint(g, checkpoint_name)
    if patch is None:
        model, methods = method(g, kind, widgets, model=(ckpt, 0)), [(kind, widgets)]
    else:
        model, methods = patch(g, ckpt)
    pos, neg = text(g, (ckpt, 1), positive, True), text(g, (ckpt, 1), negative, False)
    latent = g.node("EmptyLatentImage", [size, size, 1], outputs=[("LATENT", "LATENT")])
    ks = ksampler(g, model, pos, neg, latent, sampling, cfg)
    decode_and_save(g, (ks, 0), (ckpt, 2), f"guidance_zoo/{name}")
    return finish(g, name, family, methods, here_text(cfg, sampling))


def with_negative(g, model, kind, widgets, clip, prompt):
    """A MODEL patch; with a prompt it also takes a negative CONDITIONING (NAG, VSF) from its own text encoder."""
    sources = {"model": (model, 0)}
    if prompt is not None:
        sources["negative"] = (text(g, clip, prompt, False, "CLIP Text Encode (attention negative prompt)", True), 0)
    return method(g, kind, widgets, **sources)


def dit(name, kind, widgets, cfg, loaders, sampling, latent_node, negative_prompt, family, reason, patch=None,
        flux_guidance=False):
    """A DiT txt2img (UNETLoader, text encoders, VAE): the method node on the model, stock KSampler."""
    g = Graph()
    unet, clip, vae, shift = loaders(g)
    if patch is not None:
        model, methods = patch(g, unet)
    else:
        model, methods = with_negative(g, shift or unet, kind, widgets, (clip, 0), negative_prompt), [(kind, widgets)]
    pos = text(g, (clip, 0), POSITIVE, True)
    neg = text(g, (clip, 0), NEGATIVE if negative_prompt is None and cfg != 1 else "", False,
               "CLIP Text Encode (Negative Prompt, unused at cfg 1)" if cfg == 1 else None)
    if flux_guidance:
        guidance = g.node("FluxGuidance", [3.5], inputs=[("conditioning", "CONDITIONING")],
                          outputs=[("CONDITIONING", "CONDITIONING")], width=420, below=pos)
        g.link(pos, 0, guidance, "conditioning")
        pos = guidance
    latent = g.node(*latent_node, outputs=[("LATENT", "LATENT")])
    ks = ksampler(g, model, pos, neg, latent, sampling, cfg)
    decode_and_save(g, (ks, 0), (vae, 0), f"guidance_zoo/{name}")
    names = " and ".join(node_info()[k]["display_name"] for k, _ in methods)
    steps = sampling[0]
    negative = "" if negative_prompt is None else "; the attention negative prompt still works, through " + names
    reason = NO_CFG[reason].format(method=names, steps=steps, negative=negative) if reason else ""
    return finish(g, name, family, methods, here_text(cfg, sampling, reason))


def flux_loaders(g):
    unet = loader(g, "UNETLoader", ["flux1-dev.safetensors", "default"], [("MODEL", "MODEL")])
    clip = loader(g, "DualCLIPLoader", ["clip_l.safetensors", "t5xxl_fp16.safetensors", "flux", "default"],
                  [("CLIP", "CLIP")])
    return unet, clip, loader(g, "VAELoader", ["ae.safetensors"], [("VAE", "VAE")]), None


def wan_loaders(g):
    unet = loader(g, "UNETLoader", ["wan2.1_t2v_1.3B_fp16.safetensors", "default"], [("MODEL", "MODEL")])
    clip = loader(g, "CLIPLoader", ["umt5_xxl_fp8_e4m3fn_scaled.safetensors", "wan", "default"], [("CLIP", "CLIP")])
    vae = loader(g, "VAELoader", ["wan_2.1_vae.safetensors"], [("VAE", "VAE")])
    shift = g.node("ModelSamplingSD3", [8.0], inputs=[("model", "MODEL")], outputs=[("MODEL", "MODEL")], below=unet)
    g.link(unet, 0, shift, "model")
    return unet, clip, vae, shift


def sd3_loaders(unet_name):
    def build(g):
        unet = loader(g, "UNETLoader", [unet_name, "default"], [("MODEL", "MODEL")])
        clip = loader(g, "TripleCLIPLoader", ["clip_l.safetensors", "clip_g.safetensors", "t5xxl_fp16.safetensors"],
                      [("CLIP", "CLIP")])
        return unet, clip, loader(g, "VAELoader", ["sd3.5_vae.safetensors"], [("VAE", "VAE")]), None
    return build


SD3_LATENT = ("EmptySD3LatentImage", [1024, 1024, 1])


def flux(name, kind, widgets, negative_prompt=None, patch=None):
    return dit(name, kind, widgets, 1.0, flux_loaders, (20, "euler", "simple"), SD3_LATENT, negative_prompt,
               "Flux dev", "flux", patch, flux_guidance=True)


def wan(name, kind, widgets, cfg, negative_prompt=None, steps=30):
    return dit(name, kind, widgets, cfg, wan_loaders, (steps, "uni_pc", "simple"),
               ("EmptyHunyuanLatentVideo", [832, 480, 33, 1]), negative_prompt, "Wan 2.1 T2V 1.3B",
               "few_step" if cfg == 1 else "")


def sd3(name, kind, widgets, cfg, unet_name="sd3.5_large.safetensors", steps=28, negative_prompt=None):
    return dit(name, kind, widgets, cfg, sd3_loaders(unet_name), (steps, "euler", "sgm_uniform"), SD3_LATENT,
               negative_prompt, "SD3.5 Large Turbo" if "turbo" in unet_name else "SD3.5 Large",
               "few_step" if cfg == 1 else "")
