"""Writes the bundled digits workflows (workflows/digits_*.json, graph-editor format 0.4) from one template.

    python3 scripts/make_digits_workflows.py

Graph: Digits Model Loader -> [method node] -> KSampler <- Digit Prompt (positive, negative), EmptyLatentImage 64 x 64
(the 4x8x8 latent) -> Digits Decode (x4: 64 x 64 px) -> SaveImage. Each entry of WORKFLOWS is one file.
"""
import json
import os
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEED = 7
STEPS = 20

# stem: (title, method node type or None, its widgets_values, cfg)
WORKFLOWS = {
    "digits_nocfg": ("no guidance (cfg 1)", None, None, 1.0),
    "digits_pag": ("PAG alone (cfg 1)", "GuidanceZooPAG", [3.0, ""], 1.0),
    "digits_baseline": ("CFG 12", None, None, 12.0),
    "digits_apg": ("APG at cfg 12", "GuidanceZooAPG", [0.0, 15.0, -0.5], 12.0),
}


def node(node_id, kind, pos, size, order, inputs, outputs, widgets, title=None):
    entry = {"id": node_id, "type": kind, "pos": list(pos), "size": list(size), "flags": {}, "order": order,
             "mode": 0, "inputs": inputs, "outputs": outputs, "properties": {"Node name for S&R": kind},
             "widgets_values": widgets}
    if title:
        entry["title"] = title
    return entry


def build(stem: str, title: str, method: str | None, method_widgets, cfg: float) -> dict:
    links, nodes = [], []

    def link(src, src_slot, dst, dst_slot, typ):
        links.append([len(links) + 1, src, src_slot, dst, dst_slot, typ])
        return len(links)

    # ids: 1 loader, 2 prompt, 3 latent, 4 method (optional), 5 sampler, 6 decode, 7 save
    model_src = 4 if method else 1
    l_model = link(1, 0, 4, 0, "MODEL") if method else None
    l_ctx = link(1, 1, 2, 0, "GZ_DIGITS_CONTEXT")
    l_ks_model = link(model_src, 0, 5, 0, "MODEL")
    l_pos = link(2, 0, 5, 1, "CONDITIONING")
    l_neg = link(2, 1, 5, 2, "CONDITIONING")
    l_lat = link(3, 0, 5, 3, "LATENT")
    l_dec = link(5, 0, 6, 0, "LATENT")
    l_img = link(6, 0, 7, 0, "IMAGE")
    loader_model_links = [l_model] if method else [l_ks_model]
    order = iter(range(10))
    nodes.append(node(1, "GuidanceZooDigitsModelLoader", (40, 180), (320, 80), next(order), [],
                      [{"name": "MODEL", "type": "MODEL", "links": loader_model_links, "slot_index": 0},
                       {"name": "DIGITS_CONTEXT", "type": "GZ_DIGITS_CONTEXT", "links": [l_ctx], "slot_index": 1}],
                      ["digits_unet.safetensors"]))
    nodes.append(node(2, "GuidanceZooDigitPrompt", (400, 60), (300, 80), next(order),
                      [{"name": "digits_context", "type": "GZ_DIGITS_CONTEXT", "link": l_ctx}],
                      [{"name": "positive", "type": "CONDITIONING", "links": [l_pos], "slot_index": 0},
                       {"name": "negative", "type": "CONDITIONING", "links": [l_neg], "slot_index": 1}],
                      ["3"]))
    nodes.append(node(3, "EmptyLatentImage", (400, 420), (300, 110), next(order), [],
                      [{"name": "LATENT", "type": "LATENT", "links": [l_lat], "slot_index": 0}], [64, 64, 4],
                      title="Empty Latent (64 x 64 = the digits model's 4x8x8)"))
    if method:
        inputs = [{"name": "model", "type": "MODEL", "link": l_model}]
        nodes.append(node(4, method, (400, 220), (300, 130), next(order), inputs,
                          [{"name": "MODEL", "type": "MODEL", "links": [l_ks_model], "slot_index": 0}],
                          method_widgets))
    nodes.append(node(5, "KSampler", (760, 140), (320, 270), next(order),
                      [{"name": "model", "type": "MODEL", "link": l_ks_model},
                       {"name": "positive", "type": "CONDITIONING", "link": l_pos},
                       {"name": "negative", "type": "CONDITIONING", "link": l_neg},
                       {"name": "latent_image", "type": "LATENT", "link": l_lat}],
                      [{"name": "LATENT", "type": "LATENT", "links": [l_dec], "slot_index": 0}],
                      [SEED, "fixed", STEPS, cfg, "euler", "normal", 1.0]))
    nodes.append(node(6, "GuidanceZooDigitsDecode", (1120, 140), (260, 80), next(order),
                      [{"name": "samples", "type": "LATENT", "link": l_dec}],
                      [{"name": "IMAGE", "type": "IMAGE", "links": [l_img], "slot_index": 0}], [4]))
    nodes.append(node(7, "SaveImage", (1120, 260), (300, 300), next(order),
                      [{"name": "images", "type": "IMAGE", "link": l_img}], [], [f"guidance_zoo/{stem}"]))
    return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"guidance_zoo/{stem}")), "revision": 0,
            "last_node_id": 7, "last_link_id": len(links), "nodes": nodes, "links": links, "groups": [],
            "config": {}, "extra": {"ds": {"scale": 1.0, "offset": [0, 0]}, "frontendVersion": "1.32.9",
                                    "guidance_zoo": {"title": title}},
            "version": 0.4}


def main():
    for stem, spec in WORKFLOWS.items():
        path = os.path.join(ROOT, "workflows", f"{stem}.json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(build(stem, *spec), f, indent=2)
            f.write("\n")
        print(path)


if __name__ == "__main__":
    main()
