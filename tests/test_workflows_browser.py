"""Every bundled workflow opened in the real ComfyUI frontend (the one installed with this runtime's ComfyUI) in
headless Chromium, dropped on the canvas as a user drops the file: it loads without a page error, dialog or toast;
the frontend's graphToPrompt equals our ui_to_api; at the saved view every node lies fully on screen, uncovered by
the frontend's bars, and no two nodes overlap; nodes keep their saved sizes, titles fit, the method sits in a titled
group, seeds are "fixed" and the note shows its whole text. A digits workflow queued with the Run button produces
its images. One server and one browser for the module.

GZ_WORKFLOW_SCREENSHOTS=DIR also writes each workflow as opened to DIR/<name>.png (scripts/workflow_screenshots.py).
"""
import glob
import os

import pytest

import frontend_browser
import workflow_format as wf
from comfy_server import ComfyServer

MISSING = frontend_browser.missing()
pytestmark = pytest.mark.skipif(MISSING is not None, reason=f"browser tests skipped: {MISSING}")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKFLOWS = sorted(glob.glob(os.path.join(REPO, "workflows", "*.json")))
NAMES = [os.path.basename(p) for p in WORKFLOWS]
FOLDERS = {"ckpt_name": "checkpoints", "unet_name": "diffusion_models", "clip_name": "text_encoders",
           "clip_name1": "text_encoders", "clip_name2": "text_encoders", "clip_name3": "text_encoders",
           "clip_name4": "text_encoders", "text_encoder": "text_encoders", "vae_name": "vae", "lora_name": "loras"}


def placeholder_models(root: str, object_info: dict) -> None:
    """Empty files named as the workflows' model files, so the frontend finds every file a loader names."""
    for path in WORKFLOWS:
        if wf.needs_newer_comfyui(wf.load_workflow(path), object_info):
            continue
        for node in wf.ui_to_api(wf.load_workflow(path), object_info).values():
            for key, value in node["inputs"].items():
                if key in FOLDERS and isinstance(value, str):
                    os.makedirs(os.path.join(root, FOLDERS[key]), exist_ok=True)
                    open(os.path.join(root, FOLDERS[key], value), "wb").close()


@pytest.fixture(scope="module")
def ui(tmp_path_factory):
    models = str(tmp_path_factory.mktemp("models"))
    with ComfyServer(models_dir=models) as probe:
        placeholder_models(models, probe.object_info())
    with ComfyServer(models_dir=models) as server, frontend_browser.Frontend(server) as frontend:
        frontend.object_info = server.object_info()
        frontend.server = server
        yield frontend


def overlap(a: list, b: list) -> bool:
    return a[0] < b[0] + b[2] and b[0] < a[0] + a[2] and a[1] < b[1] + b[3] and b[1] < a[1] + a[3]


def inside(inner: list, outer: list) -> bool:
    return (outer[0] <= inner[0] and outer[1] <= inner[1] and inner[0] + inner[2] <= outer[0] + outer[2]
            and inner[1] + inner[3] <= outer[1] + outer[3])


def layout_problems(geometry: dict, saved: dict) -> list[str]:
    """Everything a user would find wrong with the opened graph's layout."""
    problems, nodes, window = [], geometry["nodes"], [0, 0, *geometry["window"]]
    for node in nodes:
        name = f"{node['type']} {node['id']}"
        if not inside(node["screen"], window) or node["covered_by"]:
            problems.append(f"{name} not fully visible at {[round(v) for v in node['screen']]}: {node['covered_by']}")
        if [round(v) for v in node["size"]] != saved[node["id"]]["size"]:
            problems.append(f"{name} resized by the frontend: {saved[node['id']]['size']} -> {node['size']}")
        if node["title_width"] + 40 > node["size"][0]:
            problems.append(f"{name}: title '{node['title']}' is cut off")
        if any(control != "fixed" for control in node["controls"]):
            problems.append(f"{name}: seed control {node['controls']}, not fixed")
    problems += [f"{a['type']} {a['id']} overlaps {b['type']} {b['id']}" for i, a in enumerate(nodes)
                 for b in nodes[i + 1:] if overlap(a["bounding"], b["bounding"])]
    return problems


def group_problems(geometry: dict) -> list[str]:
    """One titled group, on screen, holding the Guidance Zoo method node(s) and no node only partly."""
    groups, problems = geometry["groups"], []
    if len(groups) != 1 or not groups[0]["title"]:
        return [f"expected one titled group, found {[g['title'] for g in groups]}"]
    group = groups[0]
    if not inside(group["screen"], [0, 0, *geometry["window"]]):
        problems.append("the group is not fully on screen")
    members = [n for n in geometry["nodes"] if inside(n["bounding"], group["bounding"])]
    problems += [f"{n['type']} {n['id']} lies partly in the group" for n in geometry["nodes"]
                 if n not in members and overlap(n["bounding"], group["bounding"])]
    ours = {"GuidanceZooDigitsModelLoader", "GuidanceZooDigitPrompt", "GuidanceZooDigitsDecode"}
    methods = [n for n in geometry["nodes"] if n["type"].startswith("GuidanceZoo") and n["type"] not in ours]
    problems += [f"method node {n['type']} is outside the group" for n in methods if n not in members]
    if not members:
        problems.append("the group is empty")
    return problems


def note_problems(geometry: dict) -> list[str]:
    notes = [n for n in geometry["nodes"] if n["type"] == "MarkdownNote"]
    if len(notes) != 1:
        return [f"expected one note, found {len(notes)}"]
    if notes[0]["note_text"] < 150:
        return [f"the note shows only {notes[0]['note_text']} characters"]
    return [f"the note's text overflows its box by {notes[0]['note_overflow']} px"] if notes[0]["note_overflow"] > 1 \
        else []


def api_inputs(prompt: dict) -> dict:
    return {node_id: (node["class_type"], node["inputs"]) for node_id, node in prompt.items()}


@pytest.mark.parametrize("path", WORKFLOWS, ids=NAMES)
def test_workflow_opens_readable_in_the_frontend(ui, path):
    workflow = wf.load_workflow(path)
    newer = wf.needs_newer_comfyui(workflow, ui.object_info)
    if newer:
        pytest.skip(f"{os.path.basename(path)} {newer}")
    with open(path, encoding="utf-8") as f:
        ui.drop(os.path.basename(path), f.read(), len(workflow["nodes"]))
    geometry = ui.geometry()
    shots = os.environ.get("GZ_WORKFLOW_SCREENSHOTS")
    if shots:
        ui.screenshot(os.path.join(shots, os.path.basename(path).replace(".json", ".png")))
    assert ui.errors == [] and ui.notices() == [], f"{ui.errors} {ui.notices()}"
    assert api_inputs(ui.prompt()) == api_inputs(wf.ui_to_api(workflow, ui.object_info))
    saved = {str(n["id"]): {"size": [round(v) for v in n["size"]]} for n in workflow["nodes"]}
    problems = layout_problems(geometry, saved) + group_problems(geometry) + note_problems(geometry)
    assert problems == [], f"frontend {ui.version}, scale {geometry['scale']}:\n" + "\n".join(problems)


def test_digits_workflow_queued_from_the_ui_saves_its_images(ui):
    path = os.path.join(REPO, "workflows", "digits_pag.json")
    workflow = wf.load_workflow(path)
    with open(path, encoding="utf-8") as f:
        ui.drop("digits_pag.json", f.read(), len(workflow["nodes"]))
    before = set(ui.server.get_json("/history"))
    ui.queue()
    ui.page.wait_for_function("app.graph._nodes.some(n => n.type === 'SaveImage' && (n.imgs || []).length > 0)",
                              timeout=120_000)
    new = [entry for key, entry in ui.server.get_json("/history").items() if key not in before]
    assert len(new) == 1 and new[0]["status"]["status_str"] == "success"
    images = [image for output in new[0]["outputs"].values() for image in output.get("images", [])]
    assert len(images) == 4 and all(image["filename"].startswith("digits_pag") for image in images)
    seed = next(n for n in ui.geometry()["nodes"] if n["type"] == "KSampler")["seeds"]
    assert seed == [7], f"the seed changed on queue: {seed}"
