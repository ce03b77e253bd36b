"""Our nodes in a real, headless ComfyUI server (HTTP API), on the stand-in models of harness/standins.py.

One server for the whole module (about 7 s to start); every prompt uses a fresh seed, since ComfyUI does not run
an identical prompt twice.
"""
import io
import itertools
import math
import os
import re

import pytest
from PIL import Image

import runtime_paths
import standins
from comfy_server import PromptRejected
from server_fixtures import object_info, server  # noqa: F401

APG_NAME = "APG (Guidance Zoo)"
PAG_NAME = "PAG (Guidance Zoo)"
SEEDS = itertools.count(1000)


def our_node_ids() -> list[str]:
    runtime_paths.use_comfyui()
    runtime_paths.register_pack()
    import guidance_zoo.nodes as pack_nodes
    ids = [cls.define_schema().node_id for cls in pack_nodes.NODES]
    return [i for i in ids if i.startswith("GuidanceZoo")]


def sd15_graph(model_patches: list[tuple[str, dict]], seed: int, steps: int = 3, cfg: float = 6.0) -> dict:
    """Stock txt2img on the SD15 stand-in checkpoint with our nodes chained between the loader and KSampler."""
    prompt = {
        "1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": standins.SD15_CHECKPOINT}},
        "2": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "a red fox in the snow"}},
        "3": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["1", 1], "text": "blurry"}},
        "4": {"class_type": "EmptyLatentImage", "inputs": {"width": 64, "height": 64, "batch_size": 1}},
    }
    model = ["1", 0]
    for i, (class_type, inputs) in enumerate(model_patches):
        node_id = str(10 + i)
        prompt[node_id] = {"class_type": class_type, "inputs": dict(inputs, model=model)}
        model = [node_id, 0]
    prompt["5"] = {"class_type": "KSampler", "inputs": {
        "model": model, "positive": ["2", 0], "negative": ["3", 0], "latent_image": ["4", 0], "seed": seed,
        "steps": steps, "cfg": cfg, "sampler_name": "euler", "scheduler": "normal", "denoise": 1.0}}
    prompt["6"] = {"class_type": "VAEDecode", "inputs": {"samples": ["5", 0], "vae": ["1", 2]}}
    prompt["7"] = {"class_type": "SaveImage", "inputs": {"images": ["6", 0], "filename_prefix": f"gz_test_{seed}"}}
    return prompt


APG = ("GuidanceZooAPG", {"eta": 0.0, "norm_threshold": 15.0, "momentum": -0.5})
PAG = ("GuidanceZooPAG", {"scale": 3.0, "layers": ""})


def with_inputs(node: tuple[str, dict], **inputs) -> tuple[str, dict]:
    return node[0], dict(node[1], **inputs)


def load_png(server, image: dict) -> Image.Image:
    data = server.view(image)
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(data))


# ---------------------------------------------------------------------------------------------------- schema

def test_object_info_lists_every_node_of_ours(object_info):
    ids = our_node_ids()
    assert {"GuidanceZooAPG", "GuidanceZooPAG"} <= set(ids)
    missing = [i for i in ids if i not in object_info]
    assert not missing, f"not loaded by the server: {missing}"
    listed = sorted(k for k in object_info if k.startswith("GuidanceZoo"))
    assert listed == sorted(ids)


@pytest.mark.parametrize("node_id", our_node_ids())
def test_node_schema(object_info, node_id):
    """Every node: category, name, description, tooltips. Guidance nodes (all but the digits demo model's) name
    their paper and cost; MODEL patches take and give a MODEL; the others give a SAMPLER or GUIDER."""
    info = object_info[node_id]
    assert info["category"].startswith("guidance_zoo/")
    assert info["display_name"].endswith("(Guidance Zoo)")
    assert len(info["description"]) > 40
    if not info["category"].startswith("guidance_zoo/digits"):
        assert re.search(r"arXiv \d{4}\.\d{4,5}", info["description"]), info["description"]
        assert "model evaluations" in info["description"]
        assert info["output"] in (["MODEL"], ["SAMPLER"], ["GUIDER"], ["GUIDANCE_SCHEDULE"])
    assert info.get("output_tooltips") and all(info["output_tooltips"])
    inputs = {**info["input"].get("required", {}), **info["input"].get("optional", {})}
    if info["output"] == ["MODEL"] and "model" in inputs:
        assert inputs["model"][0] == "MODEL"
    for name, spec in inputs.items():
        opts = spec[1] if len(spec) > 1 else {}
        assert opts.get("tooltip"), f"{node_id}.{name} has no tooltip"
        if spec[0] in ("FLOAT", "INT"):
            assert opts["min"] <= opts["default"] <= opts["max"], f"{node_id}.{name}"


# ---------------------------------------------------------------------------------------------------- running

def test_stacked_apg_then_pag_writes_png(server):
    seed = next(SEEDS)
    result = server.run(sd15_graph([APG, PAG], seed), timeout=120)
    assert result.ok, result.error_message
    images = result.images()
    assert len(images) == 1
    image = load_png(server, images[0])
    assert image.size == (64, 64)
    assert os.path.isfile(os.path.join(server.output_dir, images[0]["subfolder"], images[0]["filename"]))


def test_wan_video_graph_decodes_and_saves(server):
    """Tiny Wan 2.1 on a 5-D video latent (5 frames -> 2 latent frames), both nodes stacked, decoded by the
    Wan VAE stand-in: one PNG per frame."""
    seed = next(SEEDS)
    prompt = {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": standins.WAN21_UNET, "weight_dtype": "default"}},
        "2": {"class_type": "CLIPLoader", "inputs": {"clip_name": standins.CLIP_L, "type": standins.CLIP_TYPE}},
        "3": {"class_type": "VAELoader", "inputs": {"vae_name": standins.VAE_WAN21}},
        "4": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["2", 0], "text": "a cat walking"}},
        "5": {"class_type": "CLIPTextEncode", "inputs": {"clip": ["2", 0], "text": ""}},
        "6": {"class_type": "EmptyHunyuanLatentVideo", "inputs": {"width": 64, "height": 64, "length": 5,
                                                                  "batch_size": 1}},
        "7": {"class_type": "GuidanceZooAPG", "inputs": dict(APG[1], model=["1", 0])},
        "8": {"class_type": "GuidanceZooPAG", "inputs": dict(PAG[1], model=["7", 0])},
        "9": {"class_type": "KSampler", "inputs": {
            "model": ["8", 0], "positive": ["4", 0], "negative": ["5", 0], "latent_image": ["6", 0], "seed": seed,
            "steps": 3, "cfg": 5.0, "sampler_name": "euler", "scheduler": "simple", "denoise": 1.0}},
        "10": {"class_type": "VAEDecode", "inputs": {"samples": ["9", 0], "vae": ["3", 0]}},
        "11": {"class_type": "SaveImage", "inputs": {"images": ["10", 0], "filename_prefix": f"gz_wan_{seed}"}},
    }
    result = server.run(prompt, timeout=120)
    assert result.ok, result.error_message
    images = result.images()
    assert len(images) == 5
    assert load_png(server, images[-1]).size == (64, 64)


# ---------------------------------------------------------------------------------------------------- bad input

def test_nan_eta_fails_with_node_name(server):
    prompt = sd15_graph([with_inputs(APG, eta=math.nan)], next(SEEDS))
    result = server.run(prompt, timeout=120)  # NaN passes ComfyUI's range check (comparisons are False)
    assert not result.ok
    error = result.error
    assert error is not None, result.status
    assert error["node_type"] == "GuidanceZooAPG"
    assert error["exception_message"].startswith(APG_NAME), error["exception_message"]
    assert "eta" in error["exception_message"]


def test_out_of_range_value_is_rejected_with_node_errors(server):
    prompt = sd15_graph([with_inputs(APG, momentum=7.5)], next(SEEDS))
    with pytest.raises(PromptRejected) as info:
        server.queue_prompt(prompt)
    assert info.value.status == 400
    node_errors = info.value.node_errors
    assert "10" in node_errors, info.value.body
    assert node_errors["10"]["class_type"] == "GuidanceZooAPG"
    assert any(e.get("extra_info", {}).get("input_name") == "momentum" for e in node_errors["10"]["errors"])


def test_unknown_pag_layer_fails_with_node_name(server):
    prompt = sd15_graph([with_inputs(PAG, layers="output 99")], next(SEEDS))
    result = server.run(prompt, timeout=120)
    assert not result.ok
    error = result.error
    assert error is not None, result.status
    assert error["node_type"] == "GuidanceZooPAG"
    assert PAG_NAME in error["exception_message"], error["exception_message"]
    assert "99" in error["exception_message"]


def test_server_still_runs_after_errors(server):
    result = server.run(sd15_graph([PAG], next(SEEDS), steps=2), timeout=120)
    assert result.ok, result.error_message
