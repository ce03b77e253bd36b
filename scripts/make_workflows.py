"""Writes the bundled workflows of the photo models (graph-editor format 0.4, frontend 1.32) into workflows/:
laid out to be read on open (scripts/workflow_layout.py), each with a note written from its method nodes' metadata.

Usage: .runtime/0.3.75/venv/bin/python scripts/make_workflows.py   (imports the nodes through ComfyUI in library mode;
0.33.0's python writes the same files). Rerun after changing a node's inputs or description.
The digits workflows come from scripts/make_digits_workflows.py.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from workflow_families import (NEGATIVE, POSITIVE, SEED, checkpoint, decode_and_save, finish, flux,  # noqa: E402
                               here_text, ksampler, loader, method, sd3, sdxl, text, wan)
from workflow_families_image import flux_kontext, hidream_full, qwen_image_edit, zimage_turbo  # noqa: E402
from workflow_families_video import hunyuan_video15, ltx2_distilled, wan22_5b, wan22_14b_two_experts  # noqa: E402
from workflow_layout import Graph  # noqa: E402
from workflow_notes import note_height  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def spg_sdxl(name):
    """SPG on SDXL: a style image (LoadImage -> VAEEncode) as the style reference."""
    def patch(g, ckpt):
        image = g.node("LoadImage", ["example.png", "image"], outputs=[("IMAGE", "IMAGE"), ("MASK", "MASK")],
                       title="Style image", height=320, member=True)
        encode = g.node("VAEEncode", [], inputs=[("pixels", "IMAGE"), ("vae", "VAE")], outputs=[("LATENT", "LATENT")],
                        width=220, member=True)
        g.link(image, 0, encode, "pixels")
        g.link(ckpt, 2, encode, "vae")
        return method(g, "GuidanceZooSPG", [3.0, ""], model=(ckpt, 0), style_latent=(encode, 0)), \
            [("GuidanceZooSPG", [3.0, ""])]
    return sdxl(name, None, None, 7.0, sampling=(50, "euler", "normal"), patch=patch, negative="")


def two_model_patch(kind, second_input, widgets, second):
    """A patch(g, ckpt) for sdxl(): the method node on the checkpoint's model and second(g, ckpt)'s model."""
    def patch(g, ckpt):
        main, other = second(g, ckpt)
        return method(g, kind, widgets, model=(main, 0), **{second_input: (other, 0)}), [(kind, widgets)]
    return patch


def sdxl_two_model(name, main_name, second_name, kind, second_input, widgets, cfg):
    """SDXL txt2img on the stock KSampler, the model patched with a second SDXL-family checkpoint."""
    def second(g, ckpt):
        return ckpt, checkpoint(g, second_name, "Second model", member=True)
    return sdxl(name, None, None, cfg, checkpoint_name=main_name,
                patch=two_model_patch(kind, second_input, widgets, second))


def lora(g, source, name, strength, title):
    node = g.node("LoraLoaderModelOnly", [name, strength], inputs=[("model", "MODEL")], outputs=[("MODEL", "MODEL")],
                  title=title, member=True)
    g.link(source, 0, node, "model")
    return node


def personalization_sdxl(name):
    """SDXL with a DreamBooth LoRA, guided by the weak model interpolated between SDXL and SDXL + LoRA."""
    def second(g, ckpt):
        return lora(g, ckpt, "your_dreambooth_subject_lora.safetensors", 1.0, "DreamBooth LoRA"), ckpt
    return sdxl(name, None, None, 7.5, negative="",
                patch=two_model_patch("GuidanceZooPersonalizationGuidance", "pretrained_model", [0.5], second),
                positive="a photo of sks dog wearing a red raincoat in the rain, city street")


def autoguidance_flux(name):
    """Flux dev with a LoRA, guided by the same LoRA at half strength (a weight variant), at cfg 1."""
    def patch(g, unet):
        full = lora(g, unet, "your_flux_style_lora.safetensors", 1.0, "LoRA at full strength")
        weak = lora(g, unet, "your_flux_style_lora.safetensors", 0.5, "Weak model: LoRA at half strength")
        return method(g, "GuidanceZooAutoguidance", [2.0], model=(full, 0), weak_model=(weak, 0)), \
            [("GuidanceZooAutoguidance", [2.0])]
    return flux(name, None, None, patch=patch)


def pag_with_schedule_sdxl(name):
    """PAG on SDXL, its scale on a Guidance Schedule: a cosine decay (strong early), the pass only for sigma >= 1."""
    schedule_values = ["cosine_decreasing", 0.0, 1.0, 1000.0]

    def patch(g, ckpt):
        schedule = method(g, "GuidanceZooSchedule", schedule_values)
        pag = method(g, "GuidanceZooPAG", [3.0, ""], model=(ckpt, 0), scale_schedule=(schedule, 0))
        return pag, [("GuidanceZooPAG", [3.0, ""]), ("GuidanceZooSchedule", schedule_values)]
    return sdxl(name, None, None, 5.0, patch=patch)


def custom_sampler(g, guider, model, sampler_node, sampling, latent_kind, vae, name, family, methods, here):
    """RandomNoise + a SAMPLER node (or KSamplerSelect of that name) + BasicScheduler + an empty latent ->
    SamplerCustomAdvanced -> decode and save; returns the finished workflow."""
    if isinstance(sampler_node, str):
        sampler_node = g.node("KSamplerSelect", [sampler_node], outputs=[("SAMPLER", "SAMPLER")])
    latent = g.node(latent_kind, [1024, 1024, 1], outputs=[("LATENT", "LATENT")])
    noise = g.node("RandomNoise", [SEED, "fixed"], outputs=[("NOISE", "NOISE")])
    sched = g.node("BasicScheduler", [sampling[2], sampling[0], 1.0], inputs=[("model", "MODEL")],
                   outputs=[("SIGMAS", "SIGMAS")])
    g.link(model, 0, sched, "model")
    run = g.node("SamplerCustomAdvanced", [], inputs=[("noise", "NOISE"), ("guider", "GUIDER"), ("sampler", "SAMPLER"),
                                                      ("sigmas", "SIGMAS"), ("latent_image", "LATENT")],
                 outputs=[("output", "LATENT"), ("denoised_output", "LATENT")], width=280)
    for source, input_name in ((noise, "noise"), (guider, "guider"), (sampler_node, "sampler"), (sched, "sigmas"),
                               (latent, "latent_image")):
        g.link(source, 0, run, input_name)
    decode_and_save(g, (run, 0), vae, f"guidance_zoo/{name}")
    return finish(g, name, family, methods, here)


def sd35_rlg_guider(name):
    """SD3.5 Medium and its RL LoRA (Flow-GRPO) through the RLG GUIDER and SamplerCustomAdvanced: the base is the
    model without the LoRA (a weight variant, no second copy)."""
    g = Graph()
    base = loader(g, "UNETLoader", ["sd3.5_medium.safetensors", "default"], [("MODEL", "MODEL")], "Base model")
    tuned = lora(g, base, "sd3.5m_flow_grpo_pickscore_lora.safetensors", 1.0, "RL LoRA (Flow-GRPO)")
    clip = loader(g, "TripleCLIPLoader", ["clip_l.safetensors", "clip_g.safetensors", "t5xxl_fp16.safetensors"],
                  [("CLIP", "CLIP")])
    vae = loader(g, "VAELoader", ["sd3.5_vae.safetensors"], [("VAE", "VAE")])
    pos, neg = text(g, (clip, 0), POSITIVE, True), text(g, (clip, 0), NEGATIVE, False)
    widgets = [4.5, 1.6, 0]
    guider = method(g, "GuidanceZooRLGGuider", widgets, model=(tuned, 0), base_model=(base, 0), positive=(pos, 0),
                    negative=(neg, 0))
    return custom_sampler(g, guider, tuned, "euler", (40, "euler", "sgm_uniform"), "EmptySD3LatentImage", (vae, 0),
                          name, "SD3.5 Medium", [("GuidanceZooRLGGuider", widgets)],
                          "This workflow: the guider's cfg 4.5 on both models, 40 euler/sgm_uniform steps, seed fixed.")


def sdxl_prompts(g, negative=NEGATIVE):
    """The SDXL base checkpoint and its positive and negative prompts."""
    ckpt = checkpoint(g, "sd_xl_base_1.0.safetensors")
    return ckpt, text(g, (ckpt, 1), POSITIVE, True), text(g, (ckpt, 1), negative, False)


def cfgpp_sdxl(name):
    """CFG++ as a SAMPLER: CFGGuider (its cfg is CFG++'s lambda) + SamplerCustomAdvanced on SDXL."""
    g = Graph()
    ckpt, pos, neg = sdxl_prompts(g)
    guider = g.node("CFGGuider", [0.8], inputs=[("model", "MODEL"), ("positive", "CONDITIONING"),
                                                ("negative", "CONDITIONING")], outputs=[("GUIDER", "GUIDER")],
                    title="CFGGuider (cfg = CFG++ lambda, 0.4-1.0)", member=True)
    for source, slot, input_name in ((ckpt, 0, "model"), (pos, 0, "positive"), (neg, 0, "negative")):
        g.link(source, slot, guider, input_name)
    widgets = ["dpmpp_2m", 1.0, 0.0, 1.0]
    sampler = method(g, "GuidanceZooCFGPPSampler", widgets)
    return custom_sampler(g, guider, ckpt, sampler, (30, "dpmpp_2m", "karras"), "EmptyLatentImage", (ckpt, 2), name,
                          "SDXL", [("GuidanceZooCFGPPSampler", widgets)],
                          "This workflow: CFGGuider cfg 0.8 (CFG++'s lambda), 30 karras steps, seed fixed.")


def perpneg_sdxl(name):
    """Perp-Neg as a GUIDER (positive, negative and empty prompt in one batched call) on SDXL."""
    g = Graph()
    ckpt, pos, neg = sdxl_prompts(g, NEGATIVE + ", people")
    empty = text(g, (ckpt, 1), "", False, "CLIP Text Encode (Empty Prompt)")
    widgets = [7.5, 1.0]
    guider = method(g, "GuidanceZooPerpNegGuider", widgets, model=(ckpt, 0), positive=(pos, 0), negative=(neg, 0),
                    empty_conditioning=(empty, 0))
    return custom_sampler(g, guider, ckpt, "dpmpp_2m", (30, "dpmpp_2m", "karras"), "EmptyLatentImage", (ckpt, 2),
                          name, "SDXL", [("GuidanceZooPerpNegGuider", widgets)],
                          "This workflow: the guider's cfg 7.5, 30 dpmpp_2m/karras steps, seed fixed.")


def baseline_sdxl(name):
    """Plain CFG on SDXL, the reference the method workflows compare against (the KSampler is the group)."""
    g = Graph()
    ckpt, pos, neg = sdxl_prompts(g)
    latent = g.node("EmptyLatentImage", [1024, 1024, 1], outputs=[("LATENT", "LATENT")])
    sampling = (30, "dpmpp_2m", "karras")
    ks = ksampler(g, ckpt, pos, neg, latent, sampling, 10.0, member=True)
    decode_and_save(g, (ks, 0), (ckpt, 2), f"guidance_zoo/{name}")
    text_ = ("## Plain classifier-free guidance on SDXL (the baseline)\n\nNo Guidance Zoo node: the stock KSampler's "
             "CFG, D = D_u + cfg (D_c - D_u), 2 model evaluations per step. Compare the other SDXL workflows (same "
             "prompt, seed and sampler) with this one.\n\n" + here_text(10.0, sampling) +
             "\n\nModel files (in ComfyUI/models/): `checkpoints/sd_xl_base_1.0.safetensors`.")
    return g.finish(name, "Classifier-free guidance (stock KSampler)", text_, lambda width: note_height(text_, width))


WORKFLOWS = {
    "baseline_sdxl": baseline_sdxl,
    "apg_sdxl": lambda n: sdxl(n, "GuidanceZooAPG", [0.0, 15.0, -0.5], 10.0),
    "pag_sdxl": lambda n: sdxl(n, "GuidanceZooPAG", [3.0, ""], 5.0),
    "pag_flux": lambda n: flux(n, "GuidanceZooPAG", [3.0, ""]),
    "cfgpp_sdxl": cfgpp_sdxl,
    "perpneg_sdxl": perpneg_sdxl,
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
    "cfg_schedule_sdxl": lambda n: sdxl(n, "GuidanceZooCFGSchedule", ["linear", 0.0, 0.28, 5.42, True], 7.0),
    "tcfg_sdxl": lambda n: sdxl(n, "GuidanceZooTCFG", [], 7.0),
    "rescale_cfg_sdxl": lambda n: sdxl(n, "GuidanceZooRescaleCFG", [0.7], 10.0),
    "cfg_zero_star_wan": lambda n: wan(n, "GuidanceZooCFGZeroStar", [1, "official"], 6.0),
    "dynamic_thresholding_sdxl": lambda n: sdxl(n, "GuidanceZooDynamicThresholding", [0.995, 7.0], 15.0),
    "fdg_sdxl": lambda n: sdxl(n, "GuidanceZooFDG", [10.0, 2, 1.0, 1.0], 5.0),
    "beta_cfg_sdxl": lambda n: sdxl(n, "GuidanceZooBetaCFG", [2.0, 2.0, 1.0], 7.5),
    "faster_cache_cfg_wan": lambda n: wan(n, "GuidanceZooFasterCacheCFGCache",
                                          [5, 641.0, 1.1, 99.0, 901.0, 1.1, -1.0, 301.0], 6.0),
    "linear_ag_sdxl": lambda n: sdxl(n, "GuidanceZooLinearAG", [5, ""], 7.0),
    "pag_schedule_sdxl": pag_with_schedule_sdxl,
    "adaptive_guidance_sdxl": lambda n: sdxl(n, "GuidanceZooAdaptiveGuidance", [0.991], 7.0),
    "seg_sdxl": lambda n: sdxl(n, "GuidanceZooSEG", [3.0, 9999999.0, ""], 5.0),
    "sag_sdxl": lambda n: sdxl(n, "GuidanceZooSAG", [0.5, 2.0], 5.0),
    "scfg_sd15": lambda n: sdxl(n, "GuidanceZooSCFG", [0.8, 3.0, 15.0, ""], 7.5,
                                checkpoint_name="v1-5-pruned-emaonly.safetensors", size=512, family="SD1.5"),
    "scfg_sdxl": lambda n: sdxl(n, "GuidanceZooSCFG", [0.8, 3.0, 15.0, ""], 7.0),
    "icg_sdxl": lambda n: sdxl(n, "GuidanceZooICG", [], 5.0),
    "tsg_sdxl": lambda n: sdxl(n, "GuidanceZooTSG", [3.0, 0.25, 400.0, 1000.0], 4.0),
    "spg_sdxl": spg_sdxl,
    "pladis_sdxl": lambda n: sdxl(n, "GuidanceZooPLADIS", [2.0, 1.5, ""], 7.0),
    "pladis_wan": lambda n: wan(n, "GuidanceZooPLADIS", [2.0, 1.5, ""], 6.0),
    "pladis_flux": lambda n: flux(n, "GuidanceZooPLADIS", [2.0, 1.5, ""]),
    "asag_sdxl": lambda n: sdxl(n, "GuidanceZooASAG", [1.5, 1.0, 2, ""], 5.0),
    "asag_flux": lambda n: flux(n, "GuidanceZooASAG", [1.5, 1.0, 2, ""]),
    "nag_flux": lambda n: flux(n, "GuidanceZooNAG", [5.0, 2.5, 0.25, 0.0], NEGATIVE),
    "nag_wan": lambda n: wan(n, "GuidanceZooNAG", [5.0, 3.5, 0.5, 0.0], 1.0, NEGATIVE, 8),
    "rcfg_sdxl_turbo": lambda n: sdxl(n, "GuidanceZooRCFG", ["initialize", 1.0], 1.2,
                                      checkpoint_name="sd_xl_turbo_1.0_fp16.safetensors", size=512,
                                      sampling=(4, "euler_ancestral", "sgm_uniform"), family="SDXL Turbo"),
    "tpg_sdxl": lambda n: sdxl(n, "GuidanceZooTPG", [3.0, "", 0, "fixed"], 5.0),
    "tpg_flux": lambda n: flux(n, "GuidanceZooTPG", [3.0, "", 0, "fixed"]),
    "slg_wan": lambda n: wan(n, "GuidanceZooSLG", [3.0, "", 0.01, 0.15, 0.0, 1], 6.0),
    "s2_guidance_sd3": lambda n: sd3(n, "GuidanceZooS2Guidance", [1.0, 0.1, "", 0, "fixed"], 4.5),
    "vsf_sd35": lambda n: sd3(n, "GuidanceZooVSF", [3.0, 0.08], 1.0, "sd3.5_large_turbo.safetensors", 8, NEGATIVE),
    "vsf_wan": lambda n: wan(n, "GuidanceZooVSF", [1.7, 0.2], 1.0, NEGATIVE, 8),
    "hunyuan_video15_slg": lambda n: hunyuan_video15(n, "GuidanceZooSLG", [3.0, "", 0.01, 0.15, 0.0, 1]),
    "ltx2_nag": lambda n: ltx2_distilled(n, "GuidanceZooNAG", [5.0, 2.5, 0.25, 0.0]),
    "hidream_pag": lambda n: hidream_full(n, "GuidanceZooPAG", [3.0, ""]),
    "zimage_nag": lambda n: zimage_turbo(n, "GuidanceZooNAG", [5.0, 2.5, 0.25, 0.0], NEGATIVE),
    "wan22_5b_slg": lambda n: wan22_5b(n, "GuidanceZooSLG", [3.0, "", 0.01, 0.15, 0.0, 1]),
    "wan22_14b_two_expert_apg": lambda n: wan22_14b_two_experts(n, "GuidanceZooAPG", [0.0, 15.0, -0.5], 5.0),
    "qwen_image_edit_apg": lambda n: qwen_image_edit(n, "GuidanceZooAPG", [0.0, 15.0, -0.5]),
    "flux_kontext_pag": lambda n: flux_kontext(n, "GuidanceZooPAG", [3.0, ""]),
}


def write(name: str, workflow: dict) -> str:
    """Write one workflow file (2-space JSON and a final newline); returns its path."""
    path = os.path.join(ROOT, "workflows", f"{name}.json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(workflow, f, indent=2)
        f.write("\n")
    return path


def main() -> None:
    for name, build in WORKFLOWS.items():
        print(write(name, build(name)))


if __name__ == "__main__":
    main()
