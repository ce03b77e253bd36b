"""The bundled workflows (workflows/*.json): well-formed graph-editor files that convert to API format and run on
the stand-in models through a real ComfyUI server, so a broken workflow fails CI. Also unit tests of the
UI -> API conversion and of the stand-in substitution (harness/workflow_format.py)."""
import copy
import glob
import io
import itertools
import os
import re

import pytest
from PIL import Image

import standins
import workflow_format as wf
from server_fixtures import object_info, server  # noqa: F401

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKFLOWS = sorted(glob.glob(os.path.join(REPO, "workflows", "*.json")))
NAMES = [os.path.basename(p) for p in WORKFLOWS]
SEEDS = itertools.count(5000)
UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def test_expected_workflows_are_bundled():
    assert {"apg_sdxl.json", "pag_sdxl.json", "pag_flux.json", "baseline_sdxl.json", "cfgpp_sdxl.json",
            "perpneg_sdxl.json"} <= set(NAMES)


def test_every_method_node_has_a_workflow(object_info):  # noqa: F811
    """Each method appears in a bundled workflow, as its MODEL patch or its GUIDER/SAMPLER node."""
    used = {node["type"] for path in WORKFLOWS for node in wf.load_workflow(path)["nodes"]}
    ours = {name for name in object_info if name.startswith("GuidanceZoo")}
    method = {name: name.removesuffix("Guider") for name in ours}
    missing = sorted(name for name in ours if not {name, method[name], method[name] + "Guider"} & used)
    assert not missing, f"nodes with no workflow under workflows/: {missing}"


# ---------------------------------------------------------------------------------------------- file structure

def _num(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _vec2(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(_num(v) for v in value)


def _frontend_schema_problems(workflow: dict) -> list[str]:
    """The rules of the ComfyUI frontend's (1.32) zod schema zComfyWorkflow, version 0.4, that a hand-made file can
    break. (All four files were also checked once with that very schema, extracted from the frontend bundle.)"""
    problems = []
    if "id" in workflow and not (isinstance(workflow["id"], str) and UUID.fullmatch(workflow["id"])):
        problems.append(f"id must be a UUID string or absent, not {workflow['id']!r}")
    if "revision" in workflow and not _num(workflow["revision"]):
        problems.append("revision must be a number")
    if not isinstance(workflow.get("last_node_id"), (int, str)) or not _num(workflow.get("last_link_id")):
        problems.append("last_node_id/last_link_id")
    if not _num(workflow.get("version")):
        problems.append("version must be a number")
    for key in ("config", "extra"):
        if workflow.get(key) is not None and not isinstance(workflow[key], dict):
            problems.append(f"{key} must be an object or null")
    ds = (workflow.get("extra") or {}).get("ds")
    if ds is not None and not (_num(ds.get("scale")) and _vec2(ds.get("offset"))):
        problems.append("extra.ds needs scale and offset")
    if not isinstance(workflow.get("groups", []), list):
        problems.append("groups must be a list")
    for node in workflow.get("nodes", []):
        where = f"node {node.get('id')}"
        if not isinstance(node.get("id"), (int, str)) or not isinstance(node.get("type"), str):
            problems.append(f"{where}: id/type")
        if not (_vec2(node.get("pos")) and _vec2(node.get("size"))):
            problems.append(f"{where}: pos/size must be two numbers")
        flags = node.get("flags")
        if not isinstance(flags, dict) or any(not isinstance(v, bool) for v in flags.values()):
            problems.append(f"{where}: flags")
        if not (_num(node.get("order")) and _num(node.get("mode"))):
            problems.append(f"{where}: order/mode")
        props = node.get("properties")
        if not isinstance(props, dict) or not isinstance(props.get("Node name for S&R", ""), str):
            problems.append(f"{where}: properties")
        if not isinstance(node.get("widgets_values", []), (list, dict)):
            problems.append(f"{where}: widgets_values")
        for inp in node.get("inputs", []):
            if not (isinstance(inp.get("name"), str) and isinstance(inp.get("type"), (str, list, int, float))
                    and (inp.get("link") is None or _num(inp["link"]))):
                problems.append(f"{where}: input {inp}")
        for out in node.get("outputs", []):
            if not (isinstance(out.get("name"), str) and isinstance(out.get("type"), (str, list, int, float))
                    and (out.get("links") is None or all(_num(link) for link in out["links"]))
                    and isinstance(out.get("slot_index", 0), (int, str))):
                problems.append(f"{where}: output {out}")
    for link in workflow.get("links", []):
        if not (isinstance(link, list) and len(link) == 6 and _num(link[0]) and isinstance(link[2], int)
                and isinstance(link[4], int) and isinstance(link[5], (str, list, int, float))):
            problems.append(f"link {link}")
    return problems


@pytest.mark.parametrize("path", WORKFLOWS, ids=NAMES)
def test_workflow_is_well_formed_graph_editor_json(path):
    workflow = wf.load_workflow(path)
    assert workflow["version"] == 0.4
    assert _frontend_schema_problems(workflow) == []
    nodes = {n["id"]: n for n in workflow["nodes"]}
    assert len(nodes) == len(workflow["nodes"]), "duplicate node ids"
    assert workflow["last_node_id"] >= max(nodes)
    link_ids = [link[0] for link in workflow["links"]]
    assert len(set(link_ids)) == len(link_ids), "duplicate link ids"
    assert workflow["last_link_id"] >= max(link_ids)
    for node in nodes.values():
        for key in ("type", "pos", "size", "flags", "order", "mode", "inputs", "outputs", "properties",
                    "widgets_values"):
            assert key in node, f"node {node['id']} lacks {key}"
        assert len(node["pos"]) == 2 and len(node["size"]) == 2
    for link_id, src, slot, dst, dslot, typ in workflow["links"]:
        out = nodes[src]["outputs"][slot]
        inp = nodes[dst]["inputs"][dslot]
        assert link_id in out["links"], f"link {link_id} missing from node {src} output {slot}"
        assert inp["link"] == link_id, f"link {link_id} missing from node {dst} input {dslot}"
        assert out["type"] == inp["type"] == typ
    for node in nodes.values():  # and every link a node names is in the links array
        for inp in node["inputs"]:
            assert inp["link"] is None or inp["link"] in link_ids
        for out in node["outputs"]:
            assert all(link in link_ids for link in out["links"] or [])
    saves = [n for n in nodes.values() if n["type"] == "SaveImage"]
    assert len(saves) == 1
    stem = os.path.splitext(os.path.basename(path))[0]
    assert saves[0]["widgets_values"][0].endswith(stem), "SaveImage filename_prefix should name the workflow"


def test_save_prefixes_are_unique():
    prefixes = [next(n["widgets_values"][0] for n in wf.load_workflow(p)["nodes"] if n["type"] == "SaveImage")
                for p in WORKFLOWS]
    assert len(set(prefixes)) == len(prefixes)


def test_workflows_use_real_model_names():
    """The bundled files name the real models (stand-ins are substituted at test time only)."""
    for path in WORKFLOWS:
        text = open(path, encoding="utf-8").read()
        assert not re.search(r"\brt_\w+\.safetensors", text), path
    apg = open(os.path.join(REPO, "workflows", "apg_sdxl.json"), encoding="utf-8").read()
    assert "sd_xl_base_1.0.safetensors" in apg
    flux = open(os.path.join(REPO, "workflows", "pag_flux.json"), encoding="utf-8").read()
    for name in ("flux1-dev.safetensors", "clip_l.safetensors", "t5xxl_fp16.safetensors", "ae.safetensors"):
        assert name in flux


# ---------------------------------------------------------------------------------------------- conversion

def test_conversion_skips_control_after_generate(object_info):
    prompt = wf.ui_to_api(wf.load_workflow(os.path.join(REPO, "workflows", "apg_sdxl.json")), object_info)
    ks = next(n for n in prompt.values() if n["class_type"] == "KSampler")["inputs"]
    assert isinstance(ks["seed"], int)
    assert ks["steps"] == 30 and ks["cfg"] == 10.0
    assert ks["sampler_name"] == "dpmpp_2m" and ks["scheduler"] == "karras" and ks["denoise"] == 1.0
    apg = next(n for n in prompt.values() if n["class_type"] == "GuidanceZooAPG")["inputs"]
    assert apg == {"model": apg["model"], "eta": 0.0, "norm_threshold": 15.0, "momentum": -0.5}
    ckpt_id = next(k for k, n in prompt.items() if n["class_type"] == "CheckpointLoaderSimple")
    assert apg["model"] == [ckpt_id, 0]


def test_conversion_handles_converted_widgets_reroutes_bypass_and_notes(object_info):
    workflow = copy.deepcopy(wf.load_workflow(os.path.join(REPO, "workflows", "pag_sdxl.json")))
    nodes = {n["id"]: n for n in workflow["nodes"]}
    ks = next(n for n in nodes.values() if n["type"] == "KSampler")
    pag = next(n for n in nodes.values() if n["type"] == "GuidanceZooPAG")
    # a PrimitiveNode drives the seed widget (converted to an input)
    prim_id, link_id = 100, 100
    workflow["nodes"].append({"id": prim_id, "type": "PrimitiveNode", "pos": [0, 0], "size": [200, 80], "flags": {},
                              "order": 0, "mode": 0, "inputs": [], "properties": {},
                              "outputs": [{"name": "INT", "type": "INT", "links": [link_id],
                                           "widget": {"name": "seed"}}],
                              "widgets_values": [4242, "fixed"]})
    ks["inputs"].append({"name": "seed", "type": "INT", "widget": {"name": "seed"}, "link": link_id})
    workflow["links"].append([link_id, prim_id, 0, ks["id"], len(ks["inputs"]) - 1, "INT"])
    # a Reroute between PAG and KSampler's model input
    model_link = next(i["link"] for i in ks["inputs"] if i["name"] == "model")
    link = next(entry for entry in workflow["links"] if entry[0] == model_link)
    reroute_id, reroute_link = 101, 101
    workflow["nodes"].append({"id": reroute_id, "type": "Reroute", "pos": [0, 0], "size": [75, 26], "flags": {},
                              "order": 0, "mode": 0, "inputs": [{"name": "", "type": "*", "link": model_link}],
                              "outputs": [{"name": "", "type": "MODEL", "links": [reroute_link]}],
                              "properties": {}})
    link[3], link[4] = reroute_id, 0
    workflow["links"].append([reroute_link, reroute_id, 0, ks["id"], 0, "MODEL"])
    next(i for i in ks["inputs"] if i["name"] == "model")["link"] = reroute_link
    # a note, which is frontend-only
    workflow["nodes"].append({"id": 102, "type": "Note", "pos": [0, 0], "size": [100, 60], "flags": {}, "order": 0,
                              "mode": 0, "inputs": [], "outputs": [], "properties": {}, "widgets_values": ["hi"]})
    prompt = wf.ui_to_api(workflow, object_info)
    ks_api = prompt[str(ks["id"])]["inputs"]
    assert ks_api["seed"] == 4242
    assert ks_api["model"] == [str(pag["id"]), 0]
    assert "102" not in prompt and "101" not in prompt and "100" not in prompt
    # bypassing PAG wires the checkpoint's MODEL straight through
    pag["mode"] = 4
    prompt = wf.ui_to_api(workflow, object_info)
    ckpt_id = next(k for k, n in prompt.items() if n["class_type"] == "CheckpointLoaderSimple")
    assert str(pag["id"]) not in prompt
    assert prompt[str(ks["id"])]["inputs"]["model"] == [ckpt_id, 0]


def test_unknown_node_type_is_a_clear_error(object_info):
    workflow = copy.deepcopy(wf.load_workflow(os.path.join(REPO, "workflows", "apg_sdxl.json")))
    workflow["nodes"][0]["type"] = "NoSuchNode"
    with pytest.raises(wf.WorkflowError, match="NoSuchNode"):
        wf.ui_to_api(workflow, object_info)


def test_flux_loader_group_becomes_sd3_standin_group(object_info):
    real = wf.ui_to_api(wf.load_workflow(os.path.join(REPO, "workflows", "pag_flux.json")), object_info)
    prompt = wf.substitute_standins(real)
    by_class = {}
    for node_id, node in prompt.items():
        by_class.setdefault(node["class_type"], []).append((node_id, node["inputs"]))
    assert "DualCLIPLoader" not in by_class
    assert by_class["UNETLoader"][0][1]["unet_name"] == standins.SD3_UNET
    assert by_class["CLIPLoader"][0][1] == {"clip_name": standins.CLIP_L, "type": "sd3", "device": "default"}
    assert by_class["VAELoader"][0][1]["vae_name"] == standins.VAE_16CH
    # every other node kept as is, links included; sizes/steps shrunk
    assert set(prompt) == set(real)
    for node_id, node in real.items():
        if node["class_type"] not in wf.TEXT_LOADERS | wf.UNET_LOADERS | wf.VAE_LOADERS:
            assert prompt[node_id]["class_type"] == node["class_type"]
            links = {k: v for k, v in node["inputs"].items() if isinstance(v, list)}
            assert {k: prompt[node_id]["inputs"][k] for k in links} == links
    assert by_class["FluxGuidance"][0][1]["guidance"] == 3.5
    assert by_class["EmptySD3LatentImage"][0][1]["width"] == 64
    assert by_class["KSampler"][0][1]["steps"] == 4 and by_class["KSampler"][0][1]["cfg"] == 1.0


def test_substitution_maps_checkpoints_wan_and_refuses_the_rest():
    sdxl = {"1": {"class_type": "CheckpointLoaderSimple", "inputs": {"ckpt_name": "sd_xl_base_1.0.safetensors"}},
            "2": {"class_type": "VAELoader", "inputs": {"vae_name": "sdxl_vae.safetensors"}}}
    out = wf.substitute_standins(sdxl)
    assert out["1"]["inputs"]["ckpt_name"] == standins.SD15_CHECKPOINT
    assert out["2"]["inputs"]["vae_name"] == standins.VAE_4CH
    assert sdxl["1"]["inputs"]["ckpt_name"] == "sd_xl_base_1.0.safetensors"  # input left untouched
    wan = {"1": {"class_type": "UNETLoader", "inputs": {"unet_name": "wan2.1_t2v_1.3B_fp16.safetensors",
                                                        "weight_dtype": "default"}},
           "2": {"class_type": "CLIPLoader", "inputs": {"clip_name": "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
                                                        "type": "wan", "device": "default"}},
           "3": {"class_type": "VAELoader", "inputs": {"vae_name": "wan_2.1_vae.safetensors"}},
           "4": {"class_type": "EmptyHunyuanLatentVideo", "inputs": {"width": 832, "height": 480, "length": 33,
                                                                     "batch_size": 1}}}
    out = wf.substitute_standins(wan)
    assert out["1"]["inputs"]["unet_name"] == standins.WAN21_UNET
    assert out["2"]["inputs"]["type"] == "sd3"
    assert out["3"]["inputs"]["vae_name"] == standins.VAE_WAN21
    assert out["4"]["inputs"] == {"width": 64, "height": 32, "length": 5, "batch_size": 1}
    with pytest.raises(wf.StandinError):
        wf.substitute_standins({"1": {"class_type": "CheckpointLoaderSimple",
                                      "inputs": {"ckpt_name": "flux1-dev-fp8.safetensors"}}})
    lora = wf.substitute_standins({"1": {"class_type": "UNETLoader", "inputs": {"unet_name": "flux1-dev.safetensors"}},
                                   "2": {"class_type": "LoraLoaderModelOnly", "inputs": {"lora_name": "x.safetensors",
                                                                                         "strength_model": 0.8}}})
    assert lora["2"]["inputs"] == {"lora_name": standins.LORA_DIT, "strength_model": 0.8}
    with pytest.raises(wf.StandinError):
        wf.substitute_standins({"1": {"class_type": "ControlNetLoader", "inputs": {"control_net_name": "x"}}})


# ---------------------------------------------------------------------------------------------- running

@pytest.mark.parametrize("path", WORKFLOWS, ids=NAMES)
def test_workflow_runs_on_standins(server, object_info, path):
    workflow, name = wf.load_workflow(path), os.path.basename(path)
    newer = wf.needs_newer_comfyui(workflow, object_info)
    if newer:
        pytest.skip(f"{name} {newer}")
    try:
        prompt = wf.workflow_to_standin_prompt(workflow, object_info)
    except wf.StandinError as error:  # converted to API format above, well-formed per the structure test
        pytest.skip(f"{name}: structure and conversion checked only; {error}")
    prompt = wf.set_seed(prompt, next(SEEDS))
    result = server.run(prompt, timeout=180)
    assert result.ok, f"{os.path.basename(path)}: {result.error_message}\n{server.log_tail(3000)}"
    images = result.images()
    video = any(node["class_type"].endswith("LatentVideo") for node in prompt.values())
    assert len(images) == (5 if video else 1)
    stem = os.path.splitext(os.path.basename(path))[0]
    assert all(image["filename"].startswith(stem) for image in images)
    data = server.view(images[0])
    image = Image.open(io.BytesIO(data))
    decode = [node["inputs"] for node in prompt.values() if node["class_type"] == "GuidanceZooDigitsDecode"]
    latent = [node["inputs"] for node in prompt.values() if node["class_type"] == "EmptyLatentImage"]
    if decode:  # the digits model: 8x latent, pixel-unshuffled 2x, enlarged by the decode's scale
        side = latent[0]["width"] // 8 * 2 * decode[0]["scale"]
        assert image.size == (side, side)
    elif not any(node["class_type"].startswith("Empty") for node in prompt.values()):  # an edit of an input image
        assert max(image.size) <= 128, image.size  # scaled to 0.01 MP by the stand-in substitution
    else:
        assert image.size == ((64, 32) if video else (64, 64))
