"""Writes the bundled digits workflows (workflows/digits_*.json, graph-editor format 0.4) from one template, laid out
to be read on open (scripts/workflow_layout.py), each with a note written from its method node's metadata.

    .runtime/0.3.75/venv/bin/python scripts/make_digits_workflows.py

Graph: Digits Model Loader -> [method node] -> KSampler <- Digit Prompt (positive, negative), EmptyLatentImage 128 x 128
(the 4x16x16 latent) -> Digits Decode (x2: 64 x 64 px) -> SaveImage. Each entry of WORKFLOWS is one file.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_workflows import write  # noqa: E402
from workflow_families import method  # noqa: E402
from workflow_layout import Graph  # noqa: E402
from workflow_notes import node_info, note, note_height  # noqa: E402

SEED = 7
STEPS = 20
# stem: (title, method node type or None, its widgets_values, cfg, why this cfg)
WORKFLOWS = {
    "digits_nocfg": ("no guidance (cfg 1)", None, None, 1.0, "cfg 1 and no method node: no guidance at all, the "
                     "reference for the others (1 model evaluation per step)."),
    "digits_pag": ("PAG alone (cfg 1)", "GuidanceZooPAG", [3.0, ""], 1.0, "cfg 1: ComfyUI skips the uncond pass, "
                   "so PAG is the only guidance (2 model evaluations per step)."),
    "digits_baseline": ("CFG 12", None, None, 12.0, "cfg 12: plain classifier-free guidance, strong enough to "
                        "oversaturate (2 model evaluations per step)."),
    "digits_apg": ("APG at cfg 12", "GuidanceZooAPG", [0.0, 15.0, -0.5], 12.0, "cfg 12, as digits_baseline: APG "
                   "keeps that guidance from oversaturating."),
}


def build(stem: str, title: str, kind: str | None, widgets, cfg: float, why: str) -> dict:
    """One digits txt2img graph; the method node (or the KSampler, without one) is the group."""
    g = Graph()
    load = g.node("GuidanceZooDigitsModelLoader", ["digits_unet.safetensors"],
                  outputs=[("MODEL", "MODEL"), ("DIGITS_CONTEXT", "GZ_DIGITS_CONTEXT")])
    model = method(g, kind, widgets, model=(load, 0)) if kind else load
    prompt = g.node("GuidanceZooDigitPrompt", ["3"], inputs=[("digits_context", "GZ_DIGITS_CONTEXT")],
                    outputs=[("positive", "CONDITIONING"), ("negative", "CONDITIONING")])
    g.link(load, 1, prompt, "digits_context")
    latent = g.node("EmptyLatentImage", [128, 128, 4], outputs=[("LATENT", "LATENT")], title="Empty Latent (4x16x16)")
    ks = g.node("KSampler", [SEED, "fixed", STEPS, cfg, "euler", "normal", 1.0],
                inputs=[("model", "MODEL"), ("positive", "CONDITIONING"), ("negative", "CONDITIONING"),
                        ("latent_image", "LATENT")], outputs=[("LATENT", "LATENT")], member=kind is None)
    for source, slot, name in ((model, 0, "model"), (prompt, 0, "positive"), (prompt, 1, "negative"),
                               (latent, 0, "latent_image")):
        g.link(source, slot, ks, name)
    decode = g.node("GuidanceZooDigitsDecode", [2], inputs=[("samples", "LATENT")], outputs=[("IMAGE", "IMAGE")])
    save = g.node("SaveImage", [f"guidance_zoo/{stem}"], inputs=[("images", "IMAGE")], width=340, height=300,
                  below=decode)
    g.link(ks, 0, decode, "samples")
    g.link(decode, 0, save, "images")
    methods = [(kind, widgets)] if kind else []
    here = (f"This workflow: digit 3, a batch of 4, KSampler cfg {cfg:g} ({why}), {STEPS} euler steps, seed fixed. "
            "The EmptyLatentImage of 128 x 128 is the digits model's 4x16x16 latent. Needs no model files: the digits "
            "model ships with Guidance Zoo.")
    text = note(methods, f"Digits model: {title}", here, [])
    group = node_info()[kind]["display_name"] if kind else "Classifier-free guidance (stock KSampler)"
    workflow = g.finish(stem, group, text, lambda width: note_height(text, width))
    workflow["extra"]["guidance_zoo"] = {"title": title}
    return workflow


def main() -> None:
    for stem, spec in WORKFLOWS.items():
        print(write(stem, build(stem, *spec)))


if __name__ == "__main__":
    main()
