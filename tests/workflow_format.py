"""Graph-editor (UI) workflow JSON -> API-format prompt, and the stand-in substitution used to run real workflows
on CPU with random-weight stand-in models.

1. `ui_to_api(workflow, object_info)` converts a workflow as the ComfyUI frontend saves it (`nodes`, `links`,
   `widgets_values`, "version": 0.4) into the API format that POST /prompt takes
   (`{"<id>": {"class_type", "inputs", "_meta": {"title"}}}`):
   - widget values are matched to input names in the order GET /object_info gives (`input_order`, required then
     optional), skipping inputs that are sockets only (MODEL, CLIP, ... or `forceInput`);
   - an INT input named seed/noise_seed or flagged `control_after_generate` is followed in `widgets_values` by the
     frontend-only "control_after_generate" value ("randomize", "fixed", ...): it is skipped; likewise the
     upload button value after an `image_upload` combo;
   - a widget converted to an input socket and linked (an `inputs` entry with `"widget": {...}` and a link) takes
     the link instead of the widget value;
   - links (list form [id, from, from_slot, to, to_slot, type] or dict form) become `["<from id>", from_slot]`;
     Reroute nodes are followed, PrimitiveNode values are inlined, bypassed nodes (mode 4) pass their matching-type
     input through, muted nodes (mode 2) and Note/MarkdownNote are dropped.
   Subgraphs are not supported (a clear error).

2. `substitute_standins(prompt, shrink=True)` rewrites an API-format prompt (a copy) so that it runs on the
   stand-ins of tests/standins.py. Only loader nodes and sizes change; every other node (our nodes, FluxGuidance,
   CLIPTextEncode, KSampler, VAEDecode, SaveImage...) stays as it is, with the same links.

   The graph's family is read from its loaders' file names, then:

   | real loaders (file names are examples)                         | stand-in                                       |
   |----------------------------------------------------------------|------------------------------------------------|
   | CheckpointLoaderSimple/CheckpointLoader: any SD1.x/SD2/SDXL     | ckpt rt_sd15_small.safetensors (SDXL cannot be |
   |   checkpoint (sd_xl_base_1.0, v1-5-pruned-emaonly, ...)         |   detected below full size; SD15-min UNet +    |
   |                                                                 |   CLIP-L + TAESD stands in for both)           |
   | UNETLoader: Wan 2.1/2.2 (wan2.1_t2v_1.3B_fp16, ...)             | rt_wan21_tiny.safetensors                      |
   | UNETLoader: any other DiT, incl. Flux/Flux2/Chroma/Qwen-Image/  | rt_sd3_tiny.safetensors: those families are    |
   |   Lumina2/SD3 (flux1-dev, qwen_image_fp8, sd3.5_medium, ...)    |   detected only at full width, a tiny SD3      |
   |                                                                 |   MMDiT with the same 16-channel latent is the |
   |                                                                 |   closest that loads                            |
   | CLIPLoader/DualCLIPLoader/TripleCLIPLoader/QuadrupleCLIPLoader  | one CLIPLoader(rt_clip_l, type "sd3") in a DiT |
   |   (clip_l + t5xxl_fp16 type flux, umt5_xxl type wan, ...)       |   graph (CLIP-L padded to 4096, the width both |
   |                                                                 |   DiT stand-ins take; T5-XXL/CLIP-G are huge), |
   |                                                                 |   type "stable_diffusion" in a UNet graph      |
   | VAELoader (ae.safetensors, wan_2.1_vae, sdxl_vae, ...)          | rt_taesd16 (DiT), rt_wan21_vae (Wan),          |
   |                                                                 |   rt_taesd (UNet graph)                        |
   | LoraLoader/LoraLoaderModelOnly (any LoRA file)                  | rt_sd15_small_lora / rt_sd3_tiny_lora /        |
   |                                                                 |   rt_wan21_tiny_lora: a rank-4 LoRA on every   |
   |                                                                 |   2-D weight of the graph's stand-in model     |

   A Flux graph UNETLoader(flux1-dev) + DualCLIPLoader(clip_l, t5xxl_fp16, flux) + VAELoader(ae) thus becomes
   UNETLoader(rt_sd3_tiny) + CLIPLoader(rt_clip_l, sd3) + VAELoader(rt_taesd16); FluxGuidance stays (the SD3
   stand-in ignores the guidance key). PAG's `layers` stays too, so bundled DiT workflows leave it empty (each
   model's default layer: 'double 1' on Flux, 'block 1' on the SD3 stand-in); a Flux-only layer name such as
   'double 3' would fail on the stand-in.
   Checkpoint names of DiT families (flux/sd3/...) and any other model loader (ControlNet...) have no stand-in:
   StandinError.

   With `shrink=True` (default) sizes are made CPU-sized too: width/height of nodes that have both become at
   most 64 px (aspect kept, multiples of 16), video `length` at most 5 frames, `batch_size` 1, sampler `steps`
   at most 4. Seeds are left alone (vary them yourself: ComfyUI caches identical prompts).

`load_workflow(path)`, `workflow_to_standin_prompt(workflow, object_info)` chain the two steps.
"""
import copy
import json
import re

import standins

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode", "Label (rgthree)"}  # never sent to the server
SEED_NAMES = {"seed", "noise_seed"}
MODE_MUTED, MODE_BYPASS = 2, 4


class WorkflowError(ValueError):
    """The workflow cannot be converted (unknown node type, subgraph, broken link...)."""


class StandinError(ValueError):
    """A node of the workflow has no stand-in."""


def load_workflow(path: str) -> dict:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ------------------------------------------------------------------------------------------------------------------
# UI -> API
# ------------------------------------------------------------------------------------------------------------------

def _links(workflow: dict) -> dict:
    out = {}
    for link in workflow.get("links", []) or []:
        if isinstance(link, dict):
            lid, src, slot, dst, dslot, typ = (link["id"], link["origin_id"], link["origin_slot"], link["target_id"],
                                               link["target_slot"], link.get("type"))
        else:
            lid, src, slot, dst, dslot, typ = link[:6]
        out[lid] = (src, slot, dst, dslot, typ)
    return out


def _input_specs(info: dict):
    """(name, type, options) for every input of a node class, in the frontend's widget order."""
    inputs = info.get("input", {})
    order = info.get("input_order") or {sec: list(inputs.get(sec, {})) for sec in ("required", "optional")}
    for section in ("required", "optional"):
        for name in order.get(section, []):
            spec = inputs.get(section, {}).get(name)
            if spec is None:
                continue
            typ = spec[0]
            opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            yield name, ("COMBO" if isinstance(typ, list) else typ), opts


def _is_widget(typ: str, opts: dict) -> bool:
    return typ in WIDGET_TYPES and not opts.get("forceInput") and not opts.get("rawLink")


def _has_control_value(name: str, typ: str, opts: dict) -> bool:
    return typ == "INT" and (opts.get("control_after_generate") or name in SEED_NAMES)


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    if "nodes" not in workflow:
        if all(isinstance(v, dict) and "class_type" in v for v in workflow.values()):
            return copy.deepcopy(workflow)  # already API format
        raise WorkflowError("not a graph-editor workflow (no 'nodes')")
    if (workflow.get("definitions") or {}).get("subgraphs"):
        raise WorkflowError("subgraphs are not supported; convert them to nodes first")
    nodes = {n["id"]: n for n in workflow["nodes"]}
    links = _links(workflow)

    def resolve(link_id, seen=()):
        """Where a link really comes from: ('link', node_id, slot), ('value', v) or None (nothing)."""
        if link_id is None:
            return None
        if link_id not in links:
            raise WorkflowError(f"link {link_id} is not in the links array")
        src, slot, _, _, typ = links[link_id]
        node = nodes.get(src)
        if node is None:
            raise WorkflowError(f"link {link_id} comes from missing node {src}")
        if src in seen:
            raise WorkflowError(f"cycle through node {src}")
        kind = node["type"]
        if kind == "Reroute":
            ins = node.get("inputs") or []
            return resolve(ins[0].get("link") if ins else None, seen + (src,))
        if kind == "PrimitiveNode":  # the frontend-only one; PrimitiveInt/String/... are real backend nodes
            values = node.get("widgets_values") or []
            return ("value", values[0]) if values else None
        mode = node.get("mode", 0)
        if mode == MODE_MUTED:
            return None
        if mode == MODE_BYPASS:
            out_type = (node.get("outputs") or [{}])[slot].get("type", typ) if slot < len(node.get("outputs") or []) else typ
            for inp in node.get("inputs") or []:
                if inp.get("type") == out_type and inp.get("link") is not None:
                    return resolve(inp["link"], seen + (src,))
            return None
        return ("link", str(src), slot)

    prompt = {}
    for node_id, node in sorted(nodes.items(), key=lambda kv: kv[0] if isinstance(kv[0], int) else str(kv[0])):
        kind = node["type"]
        if kind in FRONTEND_ONLY or node.get("mode", 0) in (MODE_MUTED, MODE_BYPASS):
            continue
        if kind not in object_info:
            if re.fullmatch(r"[0-9a-f-]{36}", kind):
                raise WorkflowError(f"node {node_id} is a subgraph instance; subgraphs are not supported")
            raise WorkflowError(f"node {node_id}: unknown node type {kind!r} (is its pack installed?)")
        info = object_info[kind]
        linked = {inp["name"]: inp.get("link") for inp in node.get("inputs") or []}
        values = node.get("widgets_values")
        inputs = {}
        idx = 0
        for name, typ, opts in _input_specs(info):
            if _is_widget(typ, opts):
                if isinstance(values, dict):
                    value, present = values.get(name), name in values
                else:
                    values = values or []
                    present = idx < len(values)
                    value = values[idx] if present else None
                    idx += 1
                    if _has_control_value(name, typ, opts):
                        idx += 1
                    if opts.get("image_upload") or opts.get("video_upload") or opts.get("audio_upload"):
                        idx += 1 if idx < len(values) and values[idx] in ("image", "video", "audio") else 0
                if linked.get(name) is not None:
                    source = resolve(linked[name])
                    if source is not None:
                        inputs[name] = source[1] if source[0] == "value" else [source[1], source[2]]
                        continue
                if present:
                    inputs[name] = value
                elif "default" in opts:
                    inputs[name] = opts["default"]
            elif linked.get(name) is not None:
                source = resolve(linked[name])
                if source is not None:
                    inputs[name] = source[1] if source[0] == "value" else [source[1], source[2]]
        prompt[str(node_id)] = {"class_type": kind, "inputs": inputs,
                                "_meta": {"title": node.get("title") or info.get("display_name") or kind}}
    return prompt


# ------------------------------------------------------------------------------------------------------------------
# stand-in substitution
# ------------------------------------------------------------------------------------------------------------------

CHECKPOINT_LOADERS = {"CheckpointLoaderSimple", "CheckpointLoader", "ImageOnlyCheckpointLoader"}
UNET_LOADERS = {"UNETLoader"}
TEXT_LOADERS = {"CLIPLoader", "DualCLIPLoader", "TripleCLIPLoader", "QuadrupleCLIPLoader"}
VAE_LOADERS = {"VAELoader"}
# other model-file loaders: no stand-in
LORA_LOADERS = {"LoraLoader", "LoraLoaderModelOnly"}
UNSUPPORTED_LOADERS = {"ControlNetLoader", "DiffControlNetLoader",
                       "CLIPVisionLoader", "StyleModelLoader", "UpscaleModelLoader", "GLIGENLoader",
                       "HypernetworkLoader", "unCLIPCheckpointLoader", "PhotoMakerLoader", "ModelPatchLoader"}
DIT_CHECKPOINT = re.compile(r"flux|sd3|stable[-_]?diffusion[-_]?3|chroma|qwen|lumina|hidream|wan|hunyuan|ltx|"
                            r"mochi|cosmos|auraflow|pixart", re.I)
WAN = re.compile(r"wan", re.I)

FAMILY_UNET, FAMILY_DIT, FAMILY_WAN = "unet", "dit", "wan"
LORA_FOR = {FAMILY_UNET: standins.LORA_UNET, FAMILY_DIT: standins.LORA_DIT, FAMILY_WAN: standins.LORA_WAN21}
VAE_FOR = {FAMILY_UNET: standins.VAE_4CH, FAMILY_DIT: standins.VAE_16CH, FAMILY_WAN: standins.VAE_WAN21}
TEXT_TYPE_FOR = {FAMILY_UNET: "stable_diffusion", FAMILY_DIT: standins.CLIP_TYPE, FAMILY_WAN: standins.CLIP_TYPE}
MAX_SIDE, MAX_FRAMES, MAX_STEPS = 64, 5, 4


def graph_family(prompt: dict) -> str:
    """unet (checkpoint graph), dit or wan, from the loaders' file names."""
    unets = [n["inputs"].get("unet_name", "") for n in prompt.values() if n["class_type"] in UNET_LOADERS]
    if unets:
        return FAMILY_WAN if any(WAN.search(str(u)) for u in unets) else FAMILY_DIT
    return FAMILY_UNET


def _shrink(node: dict):
    inputs = node["inputs"]
    w, h = inputs.get("width"), inputs.get("height")
    if isinstance(w, int) and isinstance(h, int) and max(w, h) > MAX_SIDE:
        scale = MAX_SIDE / max(w, h)
        inputs["width"] = max(16, int(round(w * scale / 16)) * 16)
        inputs["height"] = max(16, int(round(h * scale / 16)) * 16)
    if isinstance(inputs.get("length"), int) and inputs["length"] > MAX_FRAMES:
        inputs["length"] = MAX_FRAMES
    if isinstance(inputs.get("batch_size"), int):
        inputs["batch_size"] = 1
    if isinstance(inputs.get("steps"), int) and inputs["steps"] > MAX_STEPS:
        inputs["steps"] = MAX_STEPS
        for key in ("end_at_step",):
            if isinstance(inputs.get(key), int) and inputs[key] < 10000:
                inputs[key] = min(inputs[key], MAX_STEPS)


def substitute_standins(prompt: dict, shrink: bool = True) -> dict:
    """A copy of an API-format prompt with every model loader swapped for its stand-in (see the module doc)."""
    prompt = copy.deepcopy(prompt)
    family = graph_family(prompt)
    for node_id, node in prompt.items():
        kind, inputs = node["class_type"], node["inputs"]
        if kind in CHECKPOINT_LOADERS:
            name = str(inputs.get("ckpt_name", ""))
            if DIT_CHECKPOINT.search(name):
                raise StandinError(f"node {node_id}: no stand-in for the {kind} file {name!r} (a DiT checkpoint; "
                                   "only SD1.x/SD2/SDXL checkpoints map to rt_sd15_small)")
            inputs["ckpt_name"] = standins.SD15_CHECKPOINT
        elif kind in UNET_LOADERS:
            inputs["unet_name"] = standins.WAN21_UNET if family == FAMILY_WAN else standins.SD3_UNET
            inputs["weight_dtype"] = "default"
        elif kind in TEXT_LOADERS:
            node["class_type"] = "CLIPLoader"
            node["inputs"] = {"clip_name": standins.CLIP_L, "type": TEXT_TYPE_FOR[family], "device": "default"}
        elif kind in VAE_LOADERS:
            inputs["vae_name"] = VAE_FOR[family]
        elif kind in LORA_LOADERS:
            inputs["lora_name"] = LORA_FOR[family]
        elif kind in UNSUPPORTED_LOADERS:
            raise StandinError(f"node {node_id}: no stand-in for {kind}")
        if shrink:
            _shrink(node)
    return prompt


def workflow_to_standin_prompt(workflow: dict, object_info: dict, shrink: bool = True) -> dict:
    return substitute_standins(ui_to_api(workflow, object_info), shrink=shrink)


def set_seed(prompt: dict, seed: int) -> dict:
    """Set every seed/noise_seed widget (not linked ones) to `seed`, in place; returns the prompt."""
    for node in prompt.values():
        for key in SEED_NAMES:
            if key in node["inputs"] and not isinstance(node["inputs"][key], list):
                node["inputs"][key] = seed
    return prompt
