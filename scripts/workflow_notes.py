"""The note of a bundled workflow, written from the method nodes' own metadata (name, description with paper and
cost, inputs with ranges, defaults and tooltips) and from the graph (its cfg, its loaders' model files).

Node metadata comes from the nodes themselves (GET_NODE_INFO_V1, the /object_info entry), so run the generators
with a runtime's python: `.runtime/0.3.75/venv/bin/python scripts/make_workflows.py`.
"""
import functools
import math
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN"}
MODEL_FOLDERS = {"CheckpointLoaderSimple": "checkpoints", "UNETLoader": "diffusion_models",
                 "CLIPLoader": "text_encoders", "DualCLIPLoader": "text_encoders",
                 "TripleCLIPLoader": "text_encoders", "VAELoader": "vae", "LoraLoaderModelOnly": "loras"}
NOTE_LINE, NOTE_CHAR, NOTE_PAD = 17, 6.0, 80  # rendered line height, mean character width (px), padding


@functools.cache
def node_info() -> dict:
    """The /object_info entries of the pack's nodes, from the nodes' own schemas (ComfyUI in library mode)."""
    sys.path.insert(0, os.path.join(ROOT, "harness"))
    import runtime_paths
    runtime_paths.use_comfyui()
    runtime_paths.register_pack()
    from guidance_zoo.nodes import NODES
    return {info["name"]: info for info in (cls.GET_NODE_INFO_V1() for cls in NODES)}


def link_inputs(kind: str) -> list[tuple[str, str]]:
    """(name, type) of a node's inputs that take a link (not widgets), in the frontend's slot order."""
    info = node_info()[kind]
    found = []
    for section in ("required", "optional"):
        for name in info["input_order"].get(section, []):
            kind_of = info["input"][section][name][0]
            if not isinstance(kind_of, list) and kind_of not in WIDGET_TYPES:
                found.append((name, kind_of))
    return found


def outputs(kind: str) -> list[tuple[str, str]]:
    """(name, type) of a node's outputs."""
    info = node_info()[kind]
    return list(zip(info["output_name"], info["output"]))


def _setting(name: str, spec: list, value) -> str:
    """One input as a note line: name, range or choices, default, this workflow's value, tooltip."""
    options = spec[1] if len(spec) > 1 else {}
    if isinstance(spec[0], list):
        span = "one of " + ", ".join(f"`{c}`" for c in spec[0])
    elif "min" in options:
        span = f"{options['min']:g} to {options['max']:g}"
    else:
        span = spec[0].lower()
    here = f"`{value}`" if value != "" else "empty"
    return f"- `{name}` ({span}; default `{options.get('default', '')}`, here {here}): {options.get('tooltip', '')}"


def settings(kind: str, values: list) -> list[str]:
    """Note lines for a method node's widget inputs, with the values the workflow sets."""
    info, lines, values = node_info()[kind], [], list(values)
    for section in ("required", "optional"):
        for name in info["input_order"].get(section, []):
            spec = info["input"][section][name]
            if isinstance(spec[0], list) or spec[0] in WIDGET_TYPES:
                lines.append(_setting(name, spec, values.pop(0) if values else ""))
                if name == "seed" and values:
                    values.pop(0)  # the seed's control value ("fixed")
    return lines


def model_files(nodes: list[dict]) -> str:
    """The model files the workflow's loaders name, by ComfyUI models folder."""
    files = [f"`{folder}/{value}`" for node in nodes if (folder := MODEL_FOLDERS.get(node["type"]))
             for value in node["widgets_values"] if str(value).endswith(".safetensors")]
    return "Model files (in ComfyUI/models/): " + ", ".join(files) + "." if files else ""


def note(methods: list[tuple[str, list]], headline: str, here: str, nodes: list[dict]) -> str:
    """Markdown: the headline, each method node's description and settings, this workflow's settings and files."""
    parts = [f"## {headline}"]
    for kind, values in methods:
        info = node_info()[kind]
        parts += [f"**{info['display_name']}**: {info['description']}", "Settings worth trying:",
                  "\n".join(settings(kind, values))]
    parts += [here, model_files(nodes)]
    return "\n\n".join(p for p in parts if p)


def note_height(text: str, width: int) -> int:
    """Height that shows the rendered markdown without scrolling (estimated from its wrapped lines)."""
    per_line = max(20, int((width - 40) / NOTE_CHAR))
    lines = sum(max(1, math.ceil(len(line) / per_line)) for line in text.split("\n"))
    return NOTE_PAD + lines * NOTE_LINE
