"""The sweep runner (scripts/sweep.py) against two real ComfyUI servers on loopback, on the bundled digits model.

The command runs as users run it (a subprocess); the servers are checked over HTTP (GET /history) for what they
really ran. The test that kills a server runs last: the pair is not usable after it.
"""
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

import runtime_paths
import workflow_format as wf
from comfy_server import ComfyServer

from guidance_zoo.sweep.remote import sigint_deferred

REPO = runtime_paths.REPO
SWEEP = os.path.join(REPO, "scripts", "sweep.py")
DIGITS = os.path.join(REPO, "workflows", "digits_baseline.json")
DIGITS_APG = os.path.join(REPO, "workflows", "digits_apg.json")
FAST = {"KSampler.steps": 2, "Empty Latent (4x16x16).batch_size": 1}
TOML_SPEC = """seeds = 2
[axes]
method = ["none", "APG", {method = "PAG", scale = 2.0}]
"KSampler.cfg" = [3.0, 6.0]
[set]
"KSampler.steps" = 2
"Empty Latent (4x16x16).batch_size" = 1
"""


@pytest.fixture(scope="module")
def servers():
    pair = [ComfyServer(extra_args=("--use-pytorch-cross-attention",)).launch() for _ in range(2)]
    try:
        yield [s.wait_ready() for s in pair]
    finally:
        for s in pair:
            s.stop()


def sweep(*args, wait: bool = True):
    """Run the command; (returncode, stdout, stderr), or the Popen when wait is False."""
    cmd = [sys.executable, SWEEP, *map(str, args)]
    if not wait:  # SIGINT back to its default: a suite started in the background (nohup, &) inherits it ignored
        return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    return done.returncode, done.stdout, done.stderr


def write_spec(tmp_path, spec: dict, name: str = "spec.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(spec))
    return str(path)


def records(out) -> list[dict]:
    with open(os.path.join(out, "manifest.jsonl")) as f:
        return [json.loads(line) for line in f]


def node_ids(workflow: str) -> dict[str, str]:
    """{class type: node id} of a bundled workflow (the generators choose the ids)."""
    with open(workflow) as f:
        return {node["type"]: str(node["id"]) for node in json.load(f)["nodes"]}


def server_prompt(server, prompt_id: str) -> dict:
    """The API prompt a server really ran (from its history)."""
    return server.get_json(f"/history/{prompt_id}")[prompt_id]["prompt"][2]


def test_digits_sweep_on_two_servers(servers, tmp_path):
    spec = tmp_path / "spec.toml"
    spec.write_text(TOML_SPEC)
    out = tmp_path / "out"
    rc, stdout, stderr = sweep(DIGITS, spec, "--server", servers[0].url, "--server", servers[1].url, "--out", out)
    assert rc == 0, stdout + stderr
    rows = records(out)
    assert len(rows) == 12 and all(r["status"] == "ok" for r in rows), rows
    assert {r["server"] for r in rows} == {s.url for s in servers}, [r["server"] for r in rows]
    assert [r["steps"] for r in rows] == [2] * 12, "progress events from the websocket count the sampler steps"
    for r in rows:
        assert len(r["files"]) == 1 and Image.open(out / r["files"][0]).size == (64, 64), r
        assert 0.0 <= r["metrics"].get("digit_acc", -1) <= 1.0 and "clip_high" in r["metrics"], r
        by_url = {s.url: s for s in servers}
        ran = server_prompt(by_url[r["server"]], r["prompt_id"])
        kinds = [n["class_type"] for n in ran.values()]
        method = r["values"]["method"]
        want = {"none": [], "APG": ["GuidanceZooAPG"]}.get(method if isinstance(method, str) else "",
                                                            ["GuidanceZooPAG"])
        assert [k for k in kinds if k in ("GuidanceZooAPG", "GuidanceZooPAG")] == want, (r, kinds)
        sampler = next(n for n in ran.values() if n["class_type"] == "KSampler")
        values = r["values"]
        assert (sampler["inputs"]["cfg"], sampler["inputs"]["seed"]) == (values["KSampler.cfg"], values["seed"])
        if want:
            assert sampler["inputs"]["model"][0] != "1", "the method node sits between the loader and the sampler"
    with open(out / "results.csv") as f:
        lines = f.read().splitlines()
    assert len(lines) == 13 and "digit_acc" in lines[0] and "method" in lines[0], lines[:2]
    grid = Image.open(out / "grid_method_x_KSampler.cfg.png")
    assert grid.width > 2 * 192 and grid.height > 2 * 3 * 48, grid.size  # 3 rows x 2 columns, 2 seed pages
    assert sorted(p.name for p in out.glob("grid_*.png")) == [
        "grid_KSampler.cfg_x_seed.png", "grid_method_x_KSampler.cfg.png", "grid_method_x_seed.png"]


def test_api_format_workflow_method_swapped_removed_and_set(servers, tmp_path):
    api = tmp_path / "digits_apg_api.json"
    api.write_text(json.dumps(wf.ui_to_api(wf.load_workflow(DIGITS_APG), servers[0].object_info())))
    spec = write_spec(tmp_path, {"axes": {"method": ["none", "APG", "PAG"], "method.momentum": [0.0]}, "set": FAST,
                                 "seeds": [5]})
    out = tmp_path / "out"
    rc, stdout, stderr = sweep(api, spec, "--server", servers[0].url, "--out", out)
    assert rc == 0, stdout + stderr
    rows = {r["values"]["method"]: r for r in records(out)}
    assert sorted(rows) == ["APG", "PAG", "none"] and all(r["status"] == "ok" for r in rows.values())
    ran = {m: server_prompt(servers[0], r["prompt_id"]) for m, r in rows.items()}
    ids = node_ids(DIGITS_APG)
    loader, method, sampler = ids["GuidanceZooDigitsModelLoader"], ids["GuidanceZooAPG"], ids["KSampler"]
    assert ran["none"][sampler]["inputs"]["model"] == [loader, 0] and method not in ran["none"], "none removes APG"
    assert ran["APG"][method]["class_type"] == "GuidanceZooAPG" and ran["APG"][method]["inputs"]["momentum"] == 0.0
    assert ran["PAG"][method]["class_type"] == "GuidanceZooPAG" and "momentum" not in ran["PAG"][method]["inputs"]
    assert ran["PAG"][sampler]["inputs"]["model"] == [method, 0], "PAG takes the APG node's place"


@pytest.mark.parametrize("axes, message", [
    ({"NoSuchNode.cfg": [1.0]}, "axis 'NoSuchNode.cfg': no node with id, title or type 'NoSuchNode'"),
    ({"KSampler.cfgg": [1.0]}, f"axis 'KSampler.cfgg': node {node_ids(DIGITS)['KSampler']} (KSampler) has no input "
                               "'cfgg'"),
    ({"KSampler.cfg": ["high"]}, "axis 'KSampler.cfg': 'cfg' takes a FLOAT, got 'high'"),
    ({"KSampler.steps": [2.5]}, "axis 'KSampler.steps': 'steps' takes an INT, got 2.5"),
    ({"method": ["APG", "NoSuchMethod"]}, "unknown method 'NoSuchMethod' (methods: none, "),
    ({"method": ["NAG"]}, "method NAG needs its input 'negative' (CONDITIONING) connected"),
    ({"method": ["APG"], "method.nope": [1]}, "axis 'method.nope': none of the methods has an input 'nope'"),
])
def test_bad_spec_one_clear_line_nothing_queued(servers, tmp_path, axes, message):
    before = len(servers[0].get_json("/history"))
    rc, stdout, stderr = sweep(DIGITS, write_spec(tmp_path, {"axes": axes}), "--server", servers[0].url,
                               "--out", tmp_path / "out")
    assert rc == 2 and stderr.strip().startswith("error: ") and len(stderr.strip().splitlines()) == 1, stderr
    assert message in stderr, stderr
    assert len(servers[0].get_json("/history")) == before and not (tmp_path / "out").exists()


def test_unreachable_server_and_bad_spec_file(servers, tmp_path):
    from comfy_server import free_port
    url = f"http://127.0.0.1:{free_port()}"
    rc, _, stderr = sweep(DIGITS, write_spec(tmp_path, {"axes": {"KSampler.cfg": [2.0]}}), "--server",
                          servers[0].url, "--server", url)
    assert rc == 2 and stderr.strip() == f"error: server {url}: unreachable ([Errno 111] Connection refused)", stderr
    bad = tmp_path / "bad.toml"
    bad.write_text("[axes]\n'KSampler.cfg' = 3\n")
    rc, _, stderr = sweep(DIGITS, bad, "--server", servers[0].url)
    assert rc == 2 and "axis 'KSampler.cfg': needs a non-empty list of values, got 3" in stderr, stderr
    rc, _, stderr = sweep(tmp_path / "missing.json", bad)  # no --server: checked before a local server starts
    assert rc == 2 and stderr.startswith("error: workflow ") and "No such file" in stderr, stderr


def test_zipped_axes_dry_run_queues_nothing(servers, tmp_path):
    ids = node_ids(DIGITS)
    prompt, sampler = ids["GuidanceZooDigitPrompt"], ids["KSampler"]
    spec = write_spec(tmp_path, {"axes": {"KSampler.cfg": [3.0, 9.0], "KSampler.steps": [4, 8],
                                          f"{prompt}.digit": ["1", "7"]},
                                 "zip": [["KSampler.cfg", "KSampler.steps"]]})
    before = len(servers[0].get_json("/history"))
    rc, stdout, stderr = sweep(DIGITS, spec, "--server", servers[0].url, "--dry-run")
    assert rc == 0, stderr
    cells = [line for line in stdout.splitlines() if line.startswith("000")]
    assert cells == ["0000_cfg-3_steps-4_digit-1: cfg 3 | steps 4 | digit 1",
                     "0001_cfg-3_steps-4_digit-7: cfg 3 | steps 4 | digit 7",
                     "0002_cfg-9_steps-8_digit-1: cfg 9 | steps 8 | digit 1",
                     "0003_cfg-9_steps-8_digit-7: cfg 9 | steps 8 | digit 7"], stdout
    first = json.loads(stdout.split("API prompt:\n", 1)[1])
    assert (first[sampler]["inputs"]["cfg"], first[sampler]["inputs"]["steps"], first[prompt]["inputs"]["digit"]) \
        == (3.0, 4, "1")
    assert len(servers[0].get_json("/history")) == before


def wait_for_records(out, count: int, proc, limit: float = 300.0) -> None:
    t0 = time.time()
    while not (os.path.exists(out / "manifest.jsonl") and len(records(out)) >= count):
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < limit, "the sweep made no progress"
        time.sleep(0.1)


def test_resume_after_ctrl_c_runs_only_the_missing_cells(servers, tmp_path):
    slow = {**FAST, "KSampler.steps": 400}  # a cell is still queued when Ctrl-C comes
    spec = write_spec(tmp_path, {"axes": {"KSampler.cfg": [2.5, 4.5]}, "set": slow, "seeds": [7301, 7302]})
    out = tmp_path / "out"
    proc = sweep(DIGITS, spec, "--server", servers[0].url, "--out", out, "--window", "2", wait=False)
    wait_for_records(out, 1, proc)
    t0 = time.time()
    while proc.poll() is None and time.time() - t0 < 60:  # Ctrl-C while the sweep has a cell in the server's queue
        queue = servers[0].get_json("/queue")
        if queue["queue_pending"] or queue["queue_running"]:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "continue with --resume" in stdout, stdout + stderr
    assert servers[0].get_json("/queue")["queue_pending"] == [], "Ctrl-C takes the sweep's queued prompt back"
    first = records(out)
    assert 1 <= len(first) < 4
    rc, stdout, stderr = sweep(DIGITS, spec, "--server", servers[0].url, "--out", out, "--resume")
    assert rc == 0, stdout + stderr
    assert f"4 cells, {len(first)} finished before, {4 - len(first)} to run" in stdout
    rows = records(out)
    assert rows[:len(first)] == first and len(rows) == 4 and len({r["key"] for r in rows}) == 4
    assert all(r["status"] == "ok" for r in rows)
    rc, stdout, _ = sweep(DIGITS, spec, "--server", servers[0].url, "--out", out)
    assert rc == 2, "a finished folder is not overwritten without --resume"


def test_timed_out_cell_is_tried_on_the_other_server(servers, tmp_path):
    spec = write_spec(tmp_path, {"axes": {"KSampler.cfg": [7.5]}, "set": {"KSampler.steps": 200}, "seeds": [41]})
    out = tmp_path / "out"
    rc, stdout, stderr = sweep(DIGITS, spec, "--server", servers[0].url, "--server", servers[1].url, "--out", out,
                               "--timeout", "0.5", "--attempts", "2")
    assert rc == 1, stdout + stderr
    (row,) = records(out)
    assert row["status"] == "failed" and row["attempts"] == 2, row
    assert sorted(row["tried"]) == sorted(s.url for s in servers), "retried on the other server"
    assert "gave up after 2 attempts; last: timed out after 0.5 s" in row["error"], row


def test_killed_server_cells_finish_on_the_other(servers, tmp_path):
    spec = write_spec(tmp_path, {"axes": {"KSampler.cfg": [2.0, 3.0, 4.0]}, "set": FAST, "seeds": [31, 32]})
    out = tmp_path / "out"
    victim, survivor = servers
    proc = sweep(DIGITS, spec, "--server", victim.url, "--server", survivor.url, "--out", out, wait=False)
    wait_for_records(out, 1, proc)
    os.killpg(victim.proc.pid, signal.SIGKILL)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stdout + stderr
    rows = records(out)
    assert len(rows) == 6 and all(r["status"] == "ok" for r in rows)
    moved = [r for r in rows if victim.url in r["tried"]]
    assert moved and all(r["server"] == survivor.url for r in moved), rows
    assert f"server {victim.url} dropped" in stderr


def test_a_ctrl_c_while_a_prompt_is_queued_waits_for_its_registration():
    """Remote.submit holds Ctrl-C back until the prompt id is in flight (else cancel() could not take it back)."""
    reached, before = [], signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own, whatever ran before
    try:
        with pytest.raises(KeyboardInterrupt):
            with sigint_deferred():
                os.kill(os.getpid(), signal.SIGINT)
                time.sleep(0.05)
                reached.append("after the signal")
        assert reached == ["after the signal"]
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    finally:
        signal.signal(signal.SIGINT, before)
