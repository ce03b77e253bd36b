"""Every node of ours with its numeric inputs at their widget minimum, at their maximum, at 0, and each float input
at NaN, through a real server on the SD1.5 stand-in (2 steps): the run saves a finite latent, or fails with a clear
error of ours (or ComfyUI's own validation), never a raw torch error and never NaN. The cases come from the nodes'
schemas, so a new node or input is covered without editing this file; a node with a new output type needs a graph
in GRAPHS (the test says so)."""
import itertools
import math
import os

import pytest
import safetensors.torch
import torch

import runtime_paths
import standins
from comfy_server import PromptRejected
from server_fixtures import server  # noqa: F401

SEEDS = itertools.count(5000)
NUMERIC = ("INT", "FLOAT")
OURS = "(Guidance Zoo)"


def our_nodes() -> list:
    runtime_paths.use_comfyui()
    runtime_paths.register_pack()
    import guidance_zoo.nodes as pack_nodes
    return [cls.define_schema() for cls in pack_nodes.NODES]


def sweep_settings(schema) -> list[tuple[str, dict]]:
    """(label, numeric inputs to set) for one node: all at their minimum, all at their maximum, all whose range holds 0
    at 0 (the others at their defaults), then each float input alone at NaN (ComfyUI's range check lets NaN through)."""
    numeric = [spec for spec in schema.inputs if spec.get_io_type() in NUMERIC]
    if not numeric:
        return []
    settings = [("min", {s.id: s.min for s in numeric}), ("max", {s.id: s.max for s in numeric})]
    zero = {s.id: 0 for s in numeric if s.min <= 0 <= s.max}
    if zero and zero != settings[0][1]:
        settings.append(("zero", zero))
    return settings + [(f"{s.id}=nan", {s.id: math.nan}) for s in numeric if s.get_io_type() == "FLOAT"]


def cases() -> list:
    return [pytest.param(schema, values, id=f"{schema.node_id}-{label}")
            for schema in our_nodes() for label, values in sweep_settings(schema)]


def base_graph(seed: int) -> dict:
    """Loader (1), prompts (2, 3), latent (4), a LoRA'd second model (20) and the stock sampler parts."""
    return {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": standins.SD15_CHECKPOINT}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a red fox"}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "blurry"}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
        "20": {"class_type": "LoraLoaderModelOnly", "inputs": {"model": ["1", 0], "lora_name": standins.LORA_UNET,
                                                               "strength_model": 1.0}},
        "21": {"class_type": "KSamplerSelect", "inputs": {"sampler_name": "euler"}},
        "22": {"class_type": "BasicScheduler", "inputs": {"model": ["1", 0], "scheduler": "normal", "steps": 2,
                                                          "denoise": 1.0}},
        "23": {"class_type": "RandomNoise", "inputs": {"noise_seed": seed}},
    }


def node_inputs(schema, values: dict) -> dict:
    """The node's widgets at their defaults (those in values set) and its links to the base graph."""
    inputs = {}
    for spec in schema.inputs:
        kind = spec.get_io_type()
        if kind == "MODEL":
            inputs[spec.id] = ["1", 0] if spec.id == "model" else ["20", 0]
        elif kind == "CONDITIONING":
            inputs[spec.id] = ["2", 0] if spec.id == "positive" else ["3", 0]
        elif kind == "LATENT":
            inputs[spec.id] = ["4", 0]
        elif getattr(spec, "default", None) is not None:
            inputs[spec.id] = spec.default
    inputs.update(values)
    return inputs


def ksampler(model: list, seed: int) -> dict:
    return {"class_type": "KSampler", "inputs": {
        "model": model, "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "seed": seed,
        "steps": 2, "cfg": 5.0, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}}


def advanced(guider: list, sampler: list) -> dict:
    return {"class_type": "SamplerCustomAdvanced", "inputs": {"noise": ["23", 0], "guider": guider,
                                                              "sampler": sampler, "sigmas": ["22", 0],
                                                              "latent_image": ["4", 0]}}


# output type -> what to build around the node (id "10"); the sampled latent is node "30"
GRAPHS = {
    "MODEL": lambda seed: {"30": ksampler(["10", 0], seed)},
    "GUIDER": lambda seed: {"30": advanced(["10", 0], ["21", 0])},
    "SAMPLER": lambda seed: {"31": {"class_type": "CFGGuider", "inputs": {"model": ["1", 0], "positive": ["2", 0],
                                                                         "negative": ["3", 0], "cfg": 1.0}},
                             "30": advanced(["31", 0], ["10", 0])},
    "GUIDANCE_SCHEDULE": lambda seed: {"31": {"class_type": "GuidanceZooPAG", "inputs": {
        "model": ["1", 0], "scale": 3.0, "layers": "", "scale_schedule": ["10", 0]}}, "30": ksampler(["31", 0], seed)},
    "IMAGE": lambda seed: {"30": ksampler(["1", 0], seed)},
}


def prompt_for(schema, values: dict, seed: int) -> dict:
    kind = schema.outputs[0].get_io_type()
    assert kind in GRAPHS, f"{schema.node_id}: no sweep graph for a node whose output is {kind}; add one to GRAPHS"
    prompt = dict(base_graph(seed), **GRAPHS[kind](seed))
    inputs = node_inputs(schema, values)
    if kind == "IMAGE":
        inputs["samples"] = ["30", 0]
        prompt["40"] = {"class_type": "PreviewImage", "inputs": {"images": ["10", 0]}}
    else:
        prompt["40"] = {"class_type": "SaveLatent", "inputs": {"samples": ["30", 0],
                                                               "filename_prefix": f"latents/gz_sweep_{seed}"}}
    prompt["10"] = {"class_type": schema.node_id, "inputs": inputs}
    return prompt


def saved_latent(server, result) -> torch.Tensor | None:
    for output in result.outputs.values():
        for item in output.get("latents", []):
            path = os.path.join(server.output_dir, item.get("subfolder", ""), item["filename"])
            return safetensors.torch.load_file(path)["latent_tensor"]
    return None


@pytest.fixture(scope="module", autouse=True)
def loras():
    standins.ensure_loras(standins.models_dir())


@pytest.mark.parametrize("schema,values", cases())
def test_every_numeric_input_at_its_ends_gives_a_finite_latent_or_a_clear_error(server, schema, values):
    seed = next(SEEDS)
    where = f"{schema.node_id} {values}"
    try:
        result = server.run(prompt_for(schema, values, seed), timeout=300)
    except PromptRejected as rejected:     # ComfyUI's own range check names the node and the input
        entry = rejected.node_errors.get("10", {})
        assert entry.get("class_type") == schema.node_id and entry.get("errors"), rejected.body
        assert all(e.get("extra_info", {}).get("input_name") in values for e in entry["errors"]), rejected.body
        return
    if not result.ok:
        error = result.error or {}
        message = str(error.get("exception_message", ""))
        assert OURS in message.split(":")[0], f"{where}: {result.error_message}"
        assert error.get("node_type") == schema.node_id or schema.display_name in message, result.error_message
        return
    if schema.outputs[0].get_io_type() != "IMAGE":
        latent = saved_latent(server, result)
        assert latent is not None and bool(torch.isfinite(latent).all()), f"{where}: the latent is not finite"
