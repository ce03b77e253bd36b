"""Writes the bundled model-patch workflows of the CFG family (graph-editor format, frontend 1.32) into workflows/.

Usage: python scripts/make_workflows.py   (pure Python, no ComfyUI needed; rerun after changing a node's inputs)
The other workflows in workflows/ were written once by hand or by their own scripts and are kept as they are.
"""
import json
import os
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POSITIVE = "a lighthouse on a rocky coast at sunset, dramatic clouds, crashing waves, highly detailed photograph"
NEGATIVE = "blurry, low quality, oversaturated, watermark"
SEED = 20241003
GREEN, RED = ("#232", "#353"), ("#322", "#533")


class Graph:
    def __init__(self):
        self.nodes, self.links = [], []

    def node(self, kind, pos, size, widgets, inputs=(), outputs=(), title=None, color=None):
        node = {"id": len(self.nodes) + 1, "type": kind, "pos": list(pos), "size": list(size), "flags": {},
                "order": 0, "mode": 0, "inputs": [{"name": n, "type": t, "link": None} for n, t in inputs],
                "outputs": [{"name": n, "type": t, "links": [], "slot_index": i} for i, (n, t) in enumerate(outputs)],
                "properties": {"Node name for S&R": kind}, "widgets_values": list(widgets)}
        if title:
            node["title"] = title
        if color:
            node["color"], node["bgcolor"] = color
        self.nodes.append(node)
        return node

    def link(self, source, slot, target, name):
        link_id = len(self.links) + 1
        kind = source["outputs"][slot]["type"]
        source["outputs"][slot]["links"].append(link_id)
        index = next(i for i, entry in enumerate(target["inputs"]) if entry["name"] == name)
        target["inputs"][index]["link"] = link_id
        self.links.append([link_id, source["id"], slot, target["id"], index, kind])

    def finish(self, name: str) -> dict:
        deps = {n["id"]: {link[1] for link in self.links if link[3] == n["id"]} for n in self.nodes}
        done: list[int] = []
        while len(done) < len(self.nodes):
            done.append(next(n["id"] for n in self.nodes if n["id"] not in done and deps[n["id"]] <= set(done)))
        for order, node_id in enumerate(done):
            self.nodes[node_id - 1]["order"] = order
        return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"guidance-zoo/{name}")), "revision": 0,
                "last_node_id": len(self.nodes), "last_link_id": len(self.links), "nodes": self.nodes,
                "links": self.links, "groups": [], "config": {},
                "extra": {"ds": {"scale": 1.0, "offset": [0, 0]}, "frontendVersion": "1.32.9"}, "version": 0.4}


def text(graph, clip_source, prompt, y, positive):
    node = graph.node("CLIPTextEncode", (400, y), (420, 160), [prompt], inputs=[("clip", "CLIP")],
                      outputs=[("CONDITIONING", "CONDITIONING")],
                      title=f"CLIP Text Encode ({'Positive' if positive else 'Negative'} Prompt)",
                      color=GREEN if positive else RED)
    graph.link(clip_source, 1 if clip_source["type"] == "CheckpointLoaderSimple" else 0, node, "clip")
    return node


def sample_and_save(graph, model, positive, negative, latent, vae, vae_slot, steps, cfg, sampler, scheduler, prefix):
    ks = graph.node("KSampler", (860, 160), (320, 270), [SEED, "fixed", steps, cfg, sampler, scheduler, 1.0],
                    inputs=[("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                            ("latent_image", "LATENT")], outputs=[("LATENT", "LATENT")])
    dec = graph.node("VAEDecode", (1220, 160), (210, 50), [], inputs=[("samples", "LATENT"), ("vae", "VAE")],
                     outputs=[("IMAGE", "IMAGE")])
    save = graph.node("SaveImage", (1460, 160), (500, 560), [prefix], inputs=[("images", "IMAGE")])
    graph.link(model, 0, ks, "model")
    graph.link(positive, 0, ks, "positive")
    graph.link(negative, 0, ks, "negative")
    graph.link(latent, 0, ks, "latent_image")
    graph.link(ks, 0, dec, "samples")
    graph.link(vae, vae_slot, dec, "vae")
    graph.link(dec, 0, save, "images")


def patch_node(graph, source, node_type, widgets, height):
    node = graph.node(node_type, (420, -40 - height), (320, height), widgets, inputs=[("model", "MODEL")],
                      outputs=[("MODEL", "MODEL")])
    graph.link(source, 0, node, "model")
    return node


def checkpoint_loader(g, name, pos=(40, 200), title=None):
    return g.node("CheckpointLoaderSimple", pos, (320, 100), [name],
                  outputs=[("MODEL", "MODEL"), ("CLIP", "CLIP"), ("VAE", "VAE")], title=title)


def sdxl(name, node_type, widgets, cfg, height=110, checkpoint="sd_xl_base_1.0.safetensors", size=1024,
         sampling=(30, "dpmpp_2m", "karras"), patch=None, positive=POSITIVE, negative=NEGATIVE):
    """A checkpoint's txt2img on the stock KSampler (SDXL by default). patch(g, ckpt), if given, builds the sampled
    model instead of a one-node patch."""
    g = Graph()
    ckpt = checkpoint_loader(g, checkpoint)
    model = patch_node(g, ckpt, node_type, widgets, height) if patch is None else patch(g, ckpt)
    positive, negative = text(g, ckpt, positive, 80, True), text(g, ckpt, negative, 290, False)
    latent = g.node("EmptyLatentImage", (480, 500), (320, 110), [size, size, 1], outputs=[("LATENT", "LATENT")])
    steps, sampler, scheduler = sampling
    sample_and_save(g, model, positive, negative, latent, ckpt, 2, steps, cfg, sampler, scheduler,
                    f"guidance_zoo/{name}")
    return g.finish(name)


def sd15(name, node_type, widgets, cfg, height=110):
    return sdxl(name, node_type, widgets, cfg, height, checkpoint="v1-5-pruned-emaonly.safetensors", size=512)


def spg_sdxl(name):
    """SPG on SDXL: a style image (LoadImage -> VAEEncode) as the style reference."""
    def patch(g, ckpt):
        image = g.node("LoadImage", (40, -420), (320, 320), ["example.png", "image"], outputs=[("IMAGE", "IMAGE"),
                       ("MASK", "MASK")], title="Style image")
        encode = g.node("VAEEncode", (40, -60), (210, 50), [], inputs=[("pixels", "IMAGE"), ("vae", "VAE")],
                        outputs=[("LATENT", "LATENT")])
        g.link(image, 0, encode, "pixels")
        g.link(ckpt, 2, encode, "vae")
        model = g.node("GuidanceZooSPG", (420, -150), (320, 110), [3.0, ""],
                       inputs=[("model", "MODEL"), ("style_latent", "LATENT")], outputs=[("MODEL", "MODEL")])
        g.link(ckpt, 0, model, "model")
        g.link(encode, 0, model, "style_latent")
        return model
    return sdxl(name, None, None, 7.0, sampling=(50, "euler", "normal"), patch=patch, negative="")


def negative_patch(graph, model, node_type, widgets, height, clip, prompt):
    """A MODEL patch; with a prompt it also takes a negative CONDITIONING (NAG, VSF) from its own text encoder."""
    node = patch_node(graph, model, node_type, widgets, height)
    if prompt is None:
        return node
    node["inputs"].append({"name": "negative", "type": "CONDITIONING", "link": None})
    encoder = text(graph, clip, prompt, -360, False)
    encoder["title"] = "CLIP Text Encode (attention negative prompt)"
    graph.link(encoder, 0, node, "negative")
    return node


def wan(name, node_type, widgets, cfg, height=90, negative_patch_prompt=None, steps=30):
    g = Graph()
    unet = g.node("UNETLoader", (40, 60), (320, 82), ["wan2.1_t2v_1.3B_fp16.safetensors", "default"],
                  outputs=[("MODEL", "MODEL")])
    clip = g.node("CLIPLoader", (40, 200), (320, 106), ["umt5_xxl_fp8_e4m3fn_scaled.safetensors", "wan", "default"],
                  outputs=[("CLIP", "CLIP")])
    vae = g.node("VAELoader", (40, 360), (320, 58), ["wan_2.1_vae.safetensors"], outputs=[("VAE", "VAE")])
    shift = g.node("ModelSamplingSD3", (420, -60), (320, 58), [8.0], inputs=[("model", "MODEL")],
                   outputs=[("MODEL", "MODEL")])
    g.link(unet, 0, shift, "model")
    model = negative_patch(g, shift, node_type, widgets, height, clip, negative_patch_prompt)
    positive = text(g, clip, POSITIVE, 80, True)
    negative = text(g, clip, NEGATIVE if negative_patch_prompt is None else "", 290, False)
    latent = g.node("EmptyHunyuanLatentVideo", (480, 500), (320, 130), [832, 480, 33, 1],
                    outputs=[("LATENT", "LATENT")])
    sample_and_save(g, model, positive, negative, latent, vae, 0, steps, cfg, "uni_pc", "simple",
                    f"guidance_zoo/{name}")
    return g.finish(name)


def flux(name, node_type, widgets, height=90, negative_patch_prompt=None, patch=None):
    """Flux dev at cfg 1 (its guidance embedding instead of CFG), so a perturbation node guides alone (and a
    negative prompt acts only through an attention patch such as NAG's). patch(g, unet), if given, builds the
    sampled model instead of a one-node patch."""
    g = Graph()
    unet = g.node("UNETLoader", (40, 60), (320, 82), ["flux1-dev.safetensors", "default"], outputs=[("MODEL", "MODEL")])
    clip = g.node("DualCLIPLoader", (40, 200), (320, 130), ["clip_l.safetensors", "t5xxl_fp16.safetensors", "flux",
                                                            "default"], outputs=[("CLIP", "CLIP")])
    vae = g.node("VAELoader", (40, 380), (320, 58), ["ae.safetensors"], outputs=[("VAE", "VAE")])
    if patch is not None:
        model = patch(g, unet)
    else:
        model = negative_patch(g, unet, node_type, widgets, height, clip, negative_patch_prompt)
    positive, negative = text(g, clip, POSITIVE, 80, True), text(g, clip, "", 290, False)
    guidance = g.node("FluxGuidance", (860, -60), (320, 58), [3.5], inputs=[("conditioning", "CONDITIONING")],
                      outputs=[("CONDITIONING", "CONDITIONING")])
    g.link(positive, 0, guidance, "conditioning")
    latent = g.node("EmptySD3LatentImage", (480, 500), (320, 110), [1024, 1024, 1], outputs=[("LATENT", "LATENT")])
    sample_and_save(g, model, guidance, negative, latent, vae, 0, 20, 1.0, "euler", "simple", f"guidance_zoo/{name}")
    return g.finish(name)


def sd3(name, node_type, widgets, cfg, height=110, unet_name="sd3.5_large.safetensors", steps=28,
        negative_patch_prompt=None):
    """SD3.5 Large from its split files: diffusion model, the three text encoders, the VAE. With
    negative_patch_prompt the node also takes that negative (NAG, VSF) and the KSampler's negative is empty."""
    g = Graph()
    unet = g.node("UNETLoader", (40, 60), (320, 82), [unet_name, "default"],
                  outputs=[("MODEL", "MODEL")])
    clip = g.node("TripleCLIPLoader", (40, 200), (320, 106),
                  ["clip_l.safetensors", "clip_g.safetensors", "t5xxl_fp16.safetensors"], outputs=[("CLIP", "CLIP")])
    vae = g.node("VAELoader", (40, 360), (320, 58), ["sd3.5_vae.safetensors"], outputs=[("VAE", "VAE")])
    model = negative_patch(g, unet, node_type, widgets, height, clip, negative_patch_prompt)
    positive = text(g, clip, POSITIVE, 80, True)
    negative = text(g, clip, NEGATIVE if negative_patch_prompt is None else "", 290, False)
    latent = g.node("EmptySD3LatentImage", (480, 500), (320, 110), [1024, 1024, 1], outputs=[("LATENT", "LATENT")])
    sample_and_save(g, model, positive, negative, latent, vae, 0, steps, cfg, "euler", "sgm_uniform",
                    f"guidance_zoo/{name}")
    return g.finish(name)


def two_model_patch(g, main, second, node_type, second_input, widgets, height=80):
    node = g.node(node_type, (420, -40 - height), (320, height), widgets,
                  inputs=[("model", "MODEL"), (second_input, "MODEL")], outputs=[("MODEL", "MODEL")])
    g.link(main, 0, node, "model")
    g.link(second, 0, node, second_input)
    return node


def sdxl_two_model(name, main_name, second_name, node_type, second_input, widgets, cfg):
    """SDXL txt2img on the stock KSampler, the model patched with a second SDXL-family checkpoint."""
    def patch(g, ckpt):
        second = checkpoint_loader(g, second_name, (40, -120), "Second model")
        return two_model_patch(g, ckpt, second, node_type, second_input, widgets)
    return sdxl(name, None, None, cfg, checkpoint=main_name, patch=patch)


def lora(g, source, name, strength, pos, title):
    node = g.node("LoraLoaderModelOnly", pos, (320, 82), [name, strength], inputs=[("model", "MODEL")],
                  outputs=[("MODEL", "MODEL")], title=title)
    g.link(source, 0, node, "model")
    return node


def personalization_sdxl(name):
    """SDXL with a DreamBooth LoRA, guided by the weak model interpolated between SDXL and SDXL + LoRA."""
    def patch(g, ckpt):
        personal = lora(g, ckpt, "your_dreambooth_subject_lora.safetensors", 1.0, (40, -120), "DreamBooth LoRA")
        return two_model_patch(g, personal, ckpt, "GuidanceZooPersonalizationGuidance", "pretrained_model", [0.5])
    return sdxl(name, None, None, 7.5, patch=patch,
                positive="a photo of sks dog wearing a red raincoat in the rain, city street", negative="")


def autoguidance_flux(name):
    """Flux dev with a LoRA, guided by the same LoRA at half strength (a weight variant), at cfg 1."""
    def patch(g, unet):
        full = lora(g, unet, "your_flux_style_lora.safetensors", 1.0, (420, -260), "LoRA at full strength")
        weak = lora(g, unet, "your_flux_style_lora.safetensors", 0.5, (420, -160), "Weak model: LoRA at half strength")
        return two_model_patch(g, full, weak, "GuidanceZooAutoguidance", "weak_model", [2.0])
    return flux(name, None, None, patch=patch)


def sd35_rlg_guider(name):
    """SD3.5 Medium and its RL LoRA (Flow-GRPO) through the RLG GUIDER and SamplerCustomAdvanced: the base is the
    model without the LoRA (a weight variant, no second copy)."""
    g = Graph()
    base = g.node("UNETLoader", (40, -80), (320, 82), ["sd3.5_medium.safetensors", "default"],
                  outputs=[("MODEL", "MODEL")], title="Base model")
    tuned = lora(g, base, "sd3.5m_flow_grpo_pickscore_lora.safetensors", 1.0, (40, 60), "RL LoRA (Flow-GRPO)")
    clip = g.node("TripleCLIPLoader", (40, 200), (320, 130),
                  ["clip_l.safetensors", "clip_g.safetensors", "t5xxl_fp16.safetensors"], outputs=[("CLIP", "CLIP")])
    vae = g.node("VAELoader", (40, 380), (320, 58), ["sd3.5_vae.safetensors"], outputs=[("VAE", "VAE")])
    positive, negative = text(g, clip, POSITIVE, 80, True), text(g, clip, NEGATIVE, 290, False)
    guider = g.node("GuidanceZooRLGGuider", (860, -120), (320, 170), [4.5, 1.6, 0],
                    inputs=[("model", "MODEL"), ("base_model", "MODEL"), ("positive", "CONDITIONING"),
                            ("negative", "CONDITIONING")], outputs=[("GUIDER", "GUIDER")])
    g.link(tuned, 0, guider, "model")
    g.link(base, 0, guider, "base_model")
    g.link(positive, 0, guider, "positive")
    g.link(negative, 0, guider, "negative")
    noise = g.node("RandomNoise", (860, 80), (320, 82), [SEED, "fixed"], outputs=[("NOISE", "NOISE")])
    select = g.node("KSamplerSelect", (860, 200), (320, 58), ["euler"], outputs=[("SAMPLER", "SAMPLER")])
    sched = g.node("BasicScheduler", (860, 300), (320, 106), ["sgm_uniform", 40, 1.0], inputs=[("model", "MODEL")],
                   outputs=[("SIGMAS", "SIGMAS")])
    g.link(tuned, 0, sched, "model")
    latent = g.node("EmptySD3LatentImage", (480, 500), (320, 110), [1024, 1024, 1], outputs=[("LATENT", "LATENT")])
    sampler = g.node("SamplerCustomAdvanced", (1220, 160), (270, 330), [],
                     inputs=[("noise", "NOISE"), ("guider", "GUIDER"), ("sampler", "SAMPLER"), ("sigmas", "SIGMAS"),
                             ("latent_image", "LATENT")], outputs=[("output", "LATENT"), ("denoised_output", "LATENT")])
    for source, input_name in ((noise, "noise"), (guider, "guider"), (select, "sampler"), (sched, "sigmas"),
                               (latent, "latent_image")):
        g.link(source, 0, sampler, input_name)
    dec = g.node("VAEDecode", (1520, 160), (210, 50), [], inputs=[("samples", "LATENT"), ("vae", "VAE")],
                 outputs=[("IMAGE", "IMAGE")])
    save = g.node("SaveImage", (1760, 160), (500, 560), [f"guidance_zoo/{name}"], inputs=[("images", "IMAGE")])
    g.link(sampler, 0, dec, "samples")
    g.link(vae, 0, dec, "vae")
    g.link(dec, 0, save, "images")
    return g.finish(name)


def pag_with_schedule_sdxl(name):
    """PAG on SDXL with its scale on a Guidance Schedule: a cosine decay (strong early), and the extra pass only
    for sigma >= 1."""
    def patch(g, ckpt):
        schedule = g.node("GuidanceZooSchedule", (40, -330), (320, 130), ["cosine_decreasing", 0.0, 1.0, 1000.0],
                          outputs=[("GUIDANCE_SCHEDULE", "GUIDANCE_SCHEDULE")])
        model = g.node("GuidanceZooPAG", (420, -150), (320, 110), [3.0, ""],
                       inputs=[("model", "MODEL"), ("scale_schedule", "GUIDANCE_SCHEDULE")],
                       outputs=[("MODEL", "MODEL")])
        g.link(ckpt, 0, model, "model")
        g.link(schedule, 0, model, "scale_schedule")
        return model
    return sdxl(name, None, None, 5.0, patch=patch)


WORKFLOWS = {
    "autoguidance_sdxl": lambda n: sdxl_two_model(n, "sd_xl_base_1.0.safetensors", "SSD-1B.safetensors",
                                                  "GuidanceZooAutoguidance", "weak_model", [2.0], 3.0),
    "unconditional_prior_sdxl": lambda n: sdxl_two_model(n, "your_sdxl_finetune.safetensors",
                                                         "sd_xl_base_1.0.safetensors", "GuidanceZooUnconditionalPrior",
                                                         "base_model", [], 7.0),
    "domain_guidance_sdxl": lambda n: sdxl_two_model(n, "your_sdxl_domain_finetune.safetensors",
                                                     "sd_xl_base_1.0.safetensors", "GuidanceZooDomainGuidance",
                                                     "source_model", [], 5.0),
    "personalization_sdxl": personalization_sdxl,
    "autoguidance_flux": autoguidance_flux,
    "rlg_sd35": sd35_rlg_guider,
    "cfg_schedule_sdxl": lambda n: sdxl(n, "GuidanceZooCFGSchedule", ["linear", 0.0, 0.28, 5.42, True], 7.0, 160),
    "tcfg_sdxl": lambda n: sdxl(n, "GuidanceZooTCFG", [], 7.0, 40),
    "rescale_cfg_sdxl": lambda n: sdxl(n, "GuidanceZooRescaleCFG", [0.7], 10.0, 60),
    "cfg_zero_star_wan": lambda n: wan(n, "GuidanceZooCFGZeroStar", [1, "official"], 6.0),
    "dynamic_thresholding_sdxl": lambda n: sdxl(n, "GuidanceZooDynamicThresholding", [0.995, 7.0], 15.0, 80),
    "fdg_sdxl": lambda n: sdxl(n, "GuidanceZooFDG", [10.0, 2, 1.0, 1.0], 5.0, 130),
    "beta_cfg_sdxl": lambda n: sdxl(n, "GuidanceZooBetaCFG", [2.0, 2.0, 1.0], 7.5, 110),
    "faster_cache_cfg_wan": lambda n: wan(n, "GuidanceZooFasterCacheCFGCache",
                                          [5, 641.0, 1.1, 99.0, 901.0, 1.1, -1.0, 301.0], 6.0, 250),
    "linear_ag_sdxl": lambda n: sdxl(n, "GuidanceZooLinearAG", [5, ""], 7.0, 80),
    "pag_schedule_sdxl": pag_with_schedule_sdxl,
    "adaptive_guidance_sdxl": lambda n: sdxl(n, "GuidanceZooAdaptiveGuidance", [0.991], 7.0, 60),
    "seg_sdxl": lambda n: sdxl(n, "GuidanceZooSEG", [3.0, 9999999.0, ""], 5.0, 110),
    "scfg_sd15": lambda n: sd15(n, "GuidanceZooSCFG", [0.8, 3.0, 15.0, ""], 7.5, 130),
    "scfg_sdxl": lambda n: sdxl(n, "GuidanceZooSCFG", [0.8, 3.0, 15.0, ""], 7.0, 130),
    "icg_sdxl": lambda n: sdxl(n, "GuidanceZooICG", [], 5.0, 40),
    "tsg_sdxl": lambda n: sdxl(n, "GuidanceZooTSG", [3.0, 0.25, 400.0, 1000.0], 4.0, 130),
    "spg_sdxl": spg_sdxl,
    "pladis_sdxl": lambda n: sdxl(n, "GuidanceZooPLADIS", [2.0, 1.5, ""], 7.0, 110),
    "pladis_wan": lambda n: wan(n, "GuidanceZooPLADIS", [2.0, 1.5, ""], 6.0, 110),
    "pladis_flux": lambda n: flux(n, "GuidanceZooPLADIS", [2.0, 1.5, ""], 110),
    "asag_sdxl": lambda n: sdxl(n, "GuidanceZooASAG", [1.5, 1.0, 2, ""], 5.0, 160),
    "asag_flux": lambda n: flux(n, "GuidanceZooASAG", [1.5, 1.0, 2, ""], 160),
    "nag_flux": lambda n: flux(n, "GuidanceZooNAG", [5.0, 2.5, 0.25, 0.0], 130, NEGATIVE),
    "nag_wan": lambda n: wan(n, "GuidanceZooNAG", [5.0, 3.5, 0.5, 0.0], 1.0, 130, NEGATIVE, 8),
    "rcfg_sdxl_turbo": lambda n: sdxl(n, "GuidanceZooRCFG", ["initialize", 1.0], 1.2, 80,
                                      "sd_xl_turbo_1.0_fp16.safetensors", 512, (4, "euler_ancestral", "sgm_uniform")),
    "tpg_sdxl": lambda n: sdxl(n, "GuidanceZooTPG", [3.0, "", 0], 5.0, 110),
    "tpg_flux": lambda n: flux(n, "GuidanceZooTPG", [3.0, "", 0], 110),
    "slg_wan": lambda n: wan(n, "GuidanceZooSLG", [3.0, "", 0.01, 0.15, 0.0], 6.0, 180),
    "s2_guidance_sd3": lambda n: sd3(n, "GuidanceZooS2Guidance", [1.0, 0.1, "", 0], 4.5, 130),
    "vsf_sd35": lambda n: sd3(n, "GuidanceZooVSF", [3.0, 0.08], 1.0, 90, "sd3.5_large_turbo.safetensors", 8, NEGATIVE),
    "vsf_wan": lambda n: wan(n, "GuidanceZooVSF", [1.7, 0.2], 1.0, 90, NEGATIVE, 8),
}


def main() -> None:
    for name, build in WORKFLOWS.items():
        path = os.path.join(ROOT, "workflows", f"{name}.json")
        with open(path, "w") as f:
            json.dump(build(name), f, indent=2)
            f.write("\n")
        print(path)


if __name__ == "__main__":
    main()
