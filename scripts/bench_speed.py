"""Compute-bound CPU benchmark: every method node of the pack at its node defaults, and the core ComfyUI nodes that do
the same job, on mid-size random-weight models (ComfyUI's own classes) of four families: a UNet (sd15), an MMDiT
(sd3), a Flux DiT and Wan 2.1 (5-D video latent), about 1024 image tokens each.

Usage: .runtime/0.3.75/venv/bin/python scripts/bench_speed.py [--families sd3,flux] [--methods "CFG,PLADIS,core PAG"]
       [--steps 4] [--repeats 3] [--threads 1] [--quick] [--out docs/bench_speed.md] [--note "..."]
Per family a markdown table, rows = methods: time per step, time / CFG's, model evaluations per step (samples through
apply_model, counted by an APPLY_MODEL wrapper, both models of two-model methods), evaluations / CFG's, their quotient
(the cost of each evaluation against CFG's: 1.0 = the method costs only its extra evaluations) and the peak resident
memory above the loaded model(s) during one run. "CFG (again)" is plain CFG timed a second time: its time / CFG is the
noise between two identical rows. Repeats are interleaved (every row once per repeat, in one process); a row's time is
the median. With one thread the clock is the process's CPU time, so other jobs on the machine count less.
--quick: the tests' tiny models, 2 steps, 1 repeat (a smoke test). Every run is a KSampler (euler, cfg 4).
"""
import argparse
import os
import shlex
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "harness"))
import runtime_paths  # noqa: E402

runtime_paths.use_comfyui()
runtime_paths.register_pack()
import torch  # noqa: E402
import tiny_models as tm  # noqa: E402

import bench_speed_models as bm  # noqa: E402
from bench_tiny import METHODS as OURS, node_inputs, pick  # noqa: E402
from guidance_zoo.nodes.common import NodeInputError  # noqa: E402

NOISE = "CFG (again)"
COLUMNS = ("ms/step", "time / CFG", "evals/step", "evals / CFG", "time / evals", "peak MiB")


def row_names() -> list[str]:
    """CFG, its repeat, our method nodes (registry order) and the core peers this ComfyUI has."""
    return ["CFG", NOISE] + [name for name in OURS if name != "CFG"] + [p for p in bm.PEERS if bm.peer(p)]


def patched_model(name: str, model, links: bm.Links):
    """The model of a row: plain, one of our nodes at its defaults, or a core peer."""
    if name in ("CFG", NOISE):
        return model
    if name in bm.PEERS:
        return bm.peer(name)(model)
    node = OURS[name]
    return node.execute(**node_inputs(node, model, links)).result[0]


class Row:
    """One method on one family: its patched model, counters and measurements."""

    def __init__(self, name: str, setup: bm.Setup, links: bm.Links):
        self.name, self.links, self.times = name, links, []
        self.refused = self.evals = self.peak = None  # refused: the row's only cell when it has no figures
        counted, self.counter = tm.counted(setup.model)
        try:
            self.model = patched_model(name, counted, links)
            setup.sample(self.model, 1)
        except (NodeInputError, RuntimeError, ValueError, TypeError, KeyError) as error:
            print(f"  {name} refused: {error}", file=sys.stderr)
            self.refused = f"refused ({type(error).__name__})"

    def counters(self) -> list:
        return [c for c in (self.counter, self.links.counter) if c is not None]

    def measure(self, setup: bm.Setup, steps: int, clock) -> None:
        """One run counting evaluations and the memory peak above what was resident before."""
        for counter in self.counters():
            counter.samples = counter.calls = 0
        base = bm.memory_now()
        setup.sample(self.model, steps, clock)
        peak = bm.memory_peak()
        self.evals = sum(c.samples for c in self.counters()) / steps
        self.peak = None if base is None or peak is None else max(0, peak - base) / 2 ** 20


def bench_family(setup: bm.Setup, names: list[str], steps: int, repeats: int, clock) -> list[Row]:
    """Every row prepared and warmed up, measured once, then timed over interleaved repeats."""
    links = bm.Links(setup)
    rows = [Row(name, setup, links) for name in names]
    for row in [row for row in rows if row.refused is None]:
        try:
            row.measure(setup, steps, clock)
        except RuntimeError as error:  # a method's own guard at these settings (RCFG's blow-up check)
            print(f"  {row.name} stopped: {error}", file=sys.stderr)
            row.refused = f"stopped by its guard ({type(error).__name__})"
    live = [row for row in rows if row.refused is None]
    for repeat in range(repeats):
        print(f"  {setup.family}: repeat {repeat + 1}/{repeats}", file=sys.stderr, flush=True)
        for row in live:
            row.times.append(setup.sample(row.model, steps, clock))
    return rows


def cells(row: Row, cfg: Row) -> list[str]:
    """The table cells of a row against the CFG row."""
    if row.refused is not None:
        return [row.refused] + ["-"] * (len(COLUMNS) - 1)
    seconds, base = statistics.median(row.times), statistics.median(cfg.times)
    time_ratio, eval_ratio = seconds / base, row.evals / cfg.evals
    peak = "-" if row.peak is None else f"{row.peak:.0f}"
    ms = seconds * 1000
    return [f"{ms:.0f}" if ms >= 100 else f"{ms:.3g}", f"{time_ratio:.2f}", f"{row.evals:.3g}", f"{eval_ratio:.2f}",
            f"{time_ratio / eval_ratio:.2f}", peak]


def family_table(setup: bm.Setup, rows: list[Row]) -> list[str]:
    """A markdown table of one family, CFG first."""
    cfg = next(row for row in rows if row.name == "CFG")
    lines = [f"### {setup.describe()}", "", "| method | " + " | ".join(COLUMNS) + " |",
             "|---|" + "---:|" * len(COLUMNS)]
    lines += [f"| {row.name} | " + " | ".join(cells(row, cfg)) + " |" for row in rows]
    return lines + [""]


def header(opts, argv: list[str]) -> list[str]:
    """Title, command, machine and settings."""
    lines = ["# CPU speed benchmark (scripts/bench_speed.py)", "",
             "Command: `" + shlex.join(["python", "scripts/bench_speed.py", *argv]) + "`", "",
             f"Machine: {bm.machine()}.", "",
             f"Settings: KSampler euler, cfg {bm.CFG:g}, {opts.steps} steps per run, {opts.repeats} interleaved "
             f"repeats (median), batch 1, fp32, {'tiny models (--quick)' if opts.quick else 'mid-size models'}; "
             f"clock: {'process CPU time' if opts.threads == 1 else 'wall time'}. Columns: see the script's header. "
             f"Noise: the '{NOISE}' row (plain CFG timed again).", ""]
    return lines + ([opts.note, ""] if opts.note else [])


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--families", help="comma-separated subset of " + ", ".join(bm.FAMILIES))
    parser.add_argument("--methods", help="comma-separated subset of the row names (case-insensitive)")
    parser.add_argument("--steps", type=int)
    parser.add_argument("--repeats", type=int)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="tiny models, 2 steps, 1 repeat")
    parser.add_argument("--out", help="also write the markdown here")
    parser.add_argument("--note", help="a paragraph put under the header (e.g. how loaded the machine was)")
    opts = parser.parse_args(argv)
    opts.steps = opts.steps or (2 if opts.quick else 4)
    opts.repeats = opts.repeats or (1 if opts.quick else 3)
    return opts


def main(argv: list[str]) -> None:
    opts = parse(argv)
    torch.set_num_threads(opts.threads)
    clock = time.process_time if opts.threads == 1 else time.perf_counter
    names = row_names()
    families, methods = pick(opts.families, bm.FAMILIES, "families"), pick(opts.methods, names, "methods")
    methods = ["CFG", NOISE] + [m for m in methods if m not in ("CFG", NOISE)]
    lines = header(opts, argv)
    with torch.inference_mode():
        for family in families:
            setup = bm.Setup(family, opts.quick)
            print(setup.describe(), file=sys.stderr, flush=True)
            lines += family_table(setup, bench_family(setup, methods, opts.steps, opts.repeats, clock))
            del setup
    text = "\n".join(lines)
    print(text)
    if opts.out:
        with open(opts.out, "w") as out:
            out.write(text + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
