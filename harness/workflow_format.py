"""The stand-in substitution used to run real workflows on CPU with random-weight stand-in models.

The UI -> API conversion (`ui_to_api`, `load_workflow`, `WorkflowError`) ships with the sweep runner in
sweep/workflow.py and is re-exported here.

`substitute_standins(prompt, shrink=True)` rewrites an API-format prompt (a copy) so that it runs on the
stand-ins of harness/standins.py. Only loader nodes and sizes change; every other node (our nodes, FluxGuidance,
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
Checkpoint names of DiT families (flux/sd3/ltx/...), the families in NO_STANDIN (their latent has a channel count
no stand-in has: HunyuanVideo 1.5, Wan 2.2 TI2V 5B) and any other model loader (ControlNet...) have no stand-in:
StandinError.

With `shrink=True` (default) sizes are made CPU-sized too: width/height of nodes that have both become at
most 64 px (aspect kept, multiples of 16), an input image is scaled to 0.01 MP (ImageScaleToTotalPixels'
megapixels; FluxKontextImageScale becomes that node), video `length` at most 5 frames, `batch_size` 1, sampler `steps`
at most 4 (a KSamplerAdvanced's start/end step scaled with them, so two-expert graphs keep their split). Seeds
are left alone (vary them yourself: ComfyUI caches identical prompts).

A workflow that needs a newer ComfyUI says so in `extra.guidance_zoo.needs_comfyui`; `needs_newer_comfyui`
gives the reason (the node types this ComfyUI lacks) for tests to skip it on older runtimes.

`load_workflow(path)`, `workflow_to_standin_prompt(workflow, object_info)` chain the two steps.
"""
import copy
import re

import runtime_paths
import standins

runtime_paths.register_pack()
from guidance_zoo.sweep.workflow import (FRONTEND_ONLY, SEED_NAMES, WorkflowError, load_workflow,  # noqa: E402,F401
                                         ui_to_api)


class StandinError(ValueError):
    """A node of the workflow has no stand-in."""


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
NO_STANDIN = (  # model/VAE files of families whose latent no stand-in matches
    (re.compile(r"hunyuanvideo1\.?5", re.I), "HunyuanVideo 1.5 (32-channel video latent, 16x VAE)"),
    (re.compile(r"wan2\.2_ti2v|wan2\.2_vae", re.I), "Wan 2.2 TI2V 5B (48-channel latent of the Wan 2.2 VAE)"),
)

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
    if isinstance(inputs.get("megapixels"), float):  # ImageScaleToTotalPixels: its smallest size (0.01 MP)
        inputs["megapixels"] = 0.01
    if isinstance(inputs.get("length"), int) and inputs["length"] > MAX_FRAMES:
        inputs["length"] = MAX_FRAMES
    if isinstance(inputs.get("batch_size"), int):
        inputs["batch_size"] = 1
    steps = inputs.get("steps")
    if isinstance(steps, int) and steps > MAX_STEPS:
        inputs["steps"] = MAX_STEPS
        for key in ("start_at_step", "end_at_step"):
            if isinstance(inputs.get(key), int) and inputs[key] < 10000:
                inputs[key] = min(MAX_STEPS, round(inputs[key] * MAX_STEPS / steps))


def substitute_standins(prompt: dict, shrink: bool = True) -> dict:
    """A copy of an API-format prompt with every model loader swapped for its stand-in (see the module doc)."""
    prompt = copy.deepcopy(prompt)
    family = graph_family(prompt)
    for node_id, node in prompt.items():
        kind, inputs = node["class_type"], node["inputs"]
        if kind in UNET_LOADERS | VAE_LOADERS:
            name = str(inputs.get("unet_name", inputs.get("vae_name", "")))
            for pattern, family_name in NO_STANDIN:
                if pattern.search(name):
                    raise StandinError(f"node {node_id}: no stand-in for {family_name}: {kind} {name!r}")
        if kind in CHECKPOINT_LOADERS:
            name = str(inputs.get("ckpt_name", ""))
            if DIT_CHECKPOINT.search(name):
                raise StandinError(f"node {node_id}: no stand-in for the {kind} file {name!r} (a DiT checkpoint; "
                                   "only SD1.x/SD2/SDXL checkpoints map to rt_sd15_small)")
            inputs["ckpt_name"] = standins.SD15_CHECKPOINT
        elif kind in UNET_LOADERS:
            inputs["unet_name"] = {FAMILY_WAN: standins.WAN21_UNET}.get(family, standins.SD3_UNET)
            inputs["weight_dtype"] = "default"
        elif kind in TEXT_LOADERS:
            node["class_type"] = "CLIPLoader"
            node["inputs"] = {"clip_name": standins.CLIP_L, "type": TEXT_TYPE_FOR[family], "device": "default"}
        elif kind in VAE_LOADERS:
            inputs["vae_name"] = VAE_FOR[family]
        elif kind in LORA_LOADERS:
            inputs["lora_name"] = LORA_FOR[family]
        elif kind == "FluxKontextImageScale" and shrink:  # it always picks a ~1 MP Kontext size
            node["class_type"] = "ImageScaleToTotalPixels"
            node["inputs"] = {"image": inputs["image"], "upscale_method": "bilinear", "megapixels": 0.01,
                              "resolution_steps": 1}
        elif kind in UNSUPPORTED_LOADERS:
            raise StandinError(f"node {node_id}: no stand-in for {kind}")
        if shrink:
            _shrink(node)
    return prompt


def needs_newer_comfyui(workflow: dict, object_info: dict) -> str | None:
    """Why this ComfyUI cannot run a workflow that declares a newer one (extra.guidance_zoo.needs_comfyui), or None
    (also when it declares one but every node type is here)."""
    needed = ((workflow.get("extra") or {}).get("guidance_zoo") or {}).get("needs_comfyui")
    missing = sorted({n["type"] for n in workflow.get("nodes", [])} - set(object_info) - FRONTEND_ONLY)
    if needed and missing:
        return f"needs ComfyUI {needed}: this ComfyUI lacks {', '.join(missing)}"
    return None


def workflow_to_standin_prompt(workflow: dict, object_info: dict, shrink: bool = True) -> dict:
    return substitute_standins(ui_to_api(workflow, object_info), shrink=shrink)


def set_seed(prompt: dict, seed: int) -> dict:
    """Set every seed/noise_seed widget (not linked ones) to `seed`, in place; returns the prompt."""
    for node in prompt.values():
        for key in SEED_NAMES:
            if key in node["inputs"] and not isinstance(node["inputs"][key], list):
                node["inputs"][key] = seed
    return prompt
