"""Guidance Zoo sweep: run your own ComfyUI workflow over guidance methods and settings, on one or many servers.

    python scripts/sweep.py WORKFLOW.json SPEC.toml [--server URL ...] [--out DIR] [--resume] [--dry-run]

WORKFLOW is a workflow as the ComfyUI editor saves it, or its API format. SPEC (JSON or TOML) lists the axes:
inputs of any node by title or id ("KSampler.cfg"), a `method` axis that puts one of the pack's nodes on the MODEL
path before the sampler (none = baseline), zip groups and seed repeats; see sweep/spec.py or the README.
Each --server keeps --window prompts in flight; without --server, --local N headless ComfyUI servers are started
from the ComfyUI this pack is installed in. Results go to --out: the images (named by cell), manifest.jsonl
(appended as each cell finishes; --resume skips finished cells), results.csv and labelled grid_*.png.
"""
import argparse
import json
import os
import queue
import sys
import time

from . import metrics
from .dispatch import Dispatcher, NoServerLeft
from .graph import SpecError
from .progress import Progress
from .remote import Job, Remote
from .results import Manifest, write_csv
from .servers import check_node_types, object_infos, start_local
from .cells import make_cells
from .spec import describe_cell, grid_pairs, load_spec
from .grid import grid_png
from .workflow import WorkflowError, load_workflow, ui_to_api


def parse_args(argv):
    """The command line."""
    p = argparse.ArgumentParser(prog="sweep", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 2)[2], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("workflow", help="the workflow file (UI or API format JSON)")
    p.add_argument("spec", help="the sweep spec (.toml or .json)")
    p.add_argument("--server", action="append", default=[], metavar="URL",
                   help="a running ComfyUI with this pack, e.g. http://gpu1:8188 (repeat for more)")
    p.add_argument("--local", type=int, default=1, metavar="N",
                   help="without --server: start N local headless servers (default 1)")
    p.add_argument("--cpu", action="store_true", help="local servers run on the CPU (main.py --cpu)")
    p.add_argument("--comfyui", help="ComfyUI folder for local servers (default: the one this pack is in)")
    p.add_argument("--models", help="models folder for local servers (default: the ComfyUI's models/)")
    p.add_argument("--out", help="output folder (default: sweep-<workflow>-<time>/ here)")
    p.add_argument("--resume", action="store_true", help="continue in --out, skipping the cells finished there")
    p.add_argument("--window", type=int, default=2, help="prompts in flight per server (default 2)")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds a cell may take on a server (600)")
    p.add_argument("--attempts", type=int, default=3, help="servers a cell is tried on before it fails (3)")
    p.add_argument("--dry-run", action="store_true", help="print the cells and the first cell's API prompt, run none")
    args = p.parse_args(argv)
    if args.resume and not args.out:
        p.error("--resume needs --out (the folder of the run to continue)")
    if args.window < 1 or args.local < 1 or args.attempts < 1:
        p.error("--window, --local and --attempts must be at least 1")
    return args


def read_inputs(args) -> tuple[dict, dict]:
    """The workflow and the spec files (checked before any server is started or asked)."""
    try:
        workflow = load_workflow(args.workflow)
    except (OSError, ValueError) as error:
        raise WorkflowError(f"workflow {args.workflow}: {error}") from None
    return workflow, load_spec(args.spec)


def prepare(args, object_info: dict):
    """(dims, cells, grid pairs) of the sweep; SpecError/WorkflowError on bad input."""
    workflow, spec = read_inputs(args)
    dims, cells = make_cells(spec, ui_to_api(workflow, object_info), object_info)
    return dims, cells, grid_pairs(spec, dims)


def dry_run(cells: list) -> int:
    """Print every cell and the first one's API prompt."""
    for cell in cells:
        print(f"{cell.name}: {describe_cell(cell)}")
    print(f"{len(cells)} cells ({len({c.key for c in cells})} distinct prompts); the first cell's API prompt:")
    print(json.dumps(cells[0].prompt, indent=1))
    return 0


def jobs_to_run(cells: list, finished: dict) -> list[Job]:
    """One job per distinct prompt not finished yet."""
    jobs = {}
    for cell in cells:
        if cell.key not in finished:
            jobs.setdefault(cell.key, Job(cell.key, [], cell.prompt)).cells.append(cell)
    return list(jobs.values())


def write_results(out_dir: str, dims, cells, pairs, records: dict, title: str) -> list[str]:
    """results.csv and one grid per pair of dimensions."""
    written = [write_csv(out_dir, cells, records)]
    by_coords = {c.coords: c for c in cells}
    for rows, cols in pairs:
        name = "grid_" + (dims[rows].name if rows == cols else f"{dims[rows].name}_x_{dims[cols].name}")
        name = "".join(c if c.isalnum() or c in "-_." else "-" for c in name) + ".png"
        written.append(grid_png(os.path.join(out_dir, name), title, dims, rows, cols, by_coords, records, out_dir))
    return written


def run(args) -> int:
    """The sweep with servers up; returns the exit status."""
    events = queue.Queue()
    remotes = [Remote(url, events) for url in args.server]
    infos = object_infos(remotes)
    dims, cells, pairs = prepare(args, infos[0])
    check_node_types(remotes, infos, {n["class_type"] for c in cells for n in c.prompt.values()})
    if args.dry_run:
        return dry_run(cells)
    stem = os.path.splitext(os.path.basename(args.workflow))[0]
    out_dir = os.path.abspath(args.out or time.strftime(f"sweep-{stem}-%Y%m%d-%H%M%S"))
    os.makedirs(out_dir, exist_ok=True)
    manifest = Manifest(out_dir)
    finished = manifest.finished()
    if finished and not args.resume:
        raise SpecError(f"{out_dir} holds a finished sweep: add --resume to continue it, or pick another --out")
    jobs = jobs_to_run(cells, finished)
    done_before = sum(1 for c in cells if c.key in finished)
    print(f"{len(cells)} cells, {done_before} finished before, {sum(len(j.cells) for j in jobs)} to run on "
          f"{len(remotes)} server(s); output in {out_dir}", flush=True)
    metrics.prepare([j.prompt for j in jobs])
    progress = Progress(len(cells))
    progress.done = done_before
    t0 = time.time()
    for remote in remotes:
        if problem := remote.connect():
            progress.note(problem)
    try:
        Dispatcher(remotes, events, manifest, out_dir, args.window, args.timeout, args.attempts, progress).run(jobs)
        status = 0
    except KeyboardInterrupt:
        print(f"\ninterrupted: what finished is in {manifest.path}; continue with --resume --out {out_dir}")
        return 130
    except NoServerLeft as error:
        print(f"stopped: {error}", file=sys.stderr)
        status = 1
    finally:
        for remote in remotes:
            remote.close()
    records = manifest.read()
    title = f"{os.path.basename(args.workflow)} x {os.path.basename(args.spec)}: {len(cells)} cells"
    files = write_results(out_dir, dims, cells, pairs, records, title)
    bad = sum(1 for c in cells if records.get(c.key, {}).get("status") != "ok")
    print(f"{len(cells) - bad}/{len(cells)} cells ok in {time.time() - t0:.1f} s; wrote {', '.join(files)}")
    return status or (1 if bad else 0)


def main(argv=None) -> int:
    """Entry point: start local servers if none are given, run, stop them."""
    args = parse_args(argv)
    local = []
    try:
        read_inputs(args)
        if not args.server:
            local = start_local(args)
            args.server = [s.url for s in local]
        return run(args)
    except (SpecError, WorkflowError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
    finally:
        for server in local:
            server.stop()
