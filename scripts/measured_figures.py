"""Measures the README's cost figures (harness/measured_figures.py: evaluations and model calls per step of each method
on the tiny SD1.5) on every ComfyUI runtime that builds here and rewrites the README's measured-figures block.
With --memory it also reruns scripts/bench_two_model.py (a few minutes) and rewrites the two-model memory block.

Usage: .runtime/0.3.75/venv/bin/python scripts/measured_figures.py [--memory] [--python VERSION=PYTHON ...]
(--python: use that runtime's python for VERSION instead of scripts/setup_runtime.sh's).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "harness"))

import runtime_paths  # noqa: E402

runtime_paths.register_pack()

import measured_figures  # noqa: E402

README = os.path.join(ROOT, "README.md")


def measure_version(version: str, python: str | None) -> dict | None:
    """measure_all() run on one runtime (python, else setup_runtime.sh's), None if it cannot be built here."""
    python = python or runtime_paths.runtime_python(version)
    if python is None:
        return None
    env = {k: v for k, v in os.environ.items() if k != "COMFYUI_PATH"}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "figures.json")
        subprocess.run([python, os.path.abspath(__file__), "--measure-into", out], cwd=ROOT, env=env, check=True)
        with open(out) as f:
            return {tuple(key): tuple(cells) for key, cells in json.load(f)}


def write_block(block: str, start: str, end: str) -> None:
    """Replace the README's block between start and end with block."""
    with open(README) as f:
        text = f.read()
    if start not in text or end not in text:
        raise SystemExit(f"README.md has no {start} ... {end} markers")
    with open(README, "w") as f:
        f.write(text[:text.index(start)] + block + text[text.index(end) + len(end):])


def memory_block() -> str:
    """The two-model memory block from a fresh scripts/bench_two_model.py run with this python."""
    bench = [sys.executable, os.path.join(ROOT, "scripts", "bench_two_model.py"),
             "--steps", str(measured_figures.MEMORY_STEPS)]
    out = subprocess.run(bench, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    rows = [line.strip("|").split(" | ") for line in out.splitlines() if line.startswith("| ")][1:]
    return measured_figures.render_memory({name.strip(): peak.strip() for name, peak, _ms in rows})


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--memory", action="store_true", help="also rerun scripts/bench_two_model.py")
    parser.add_argument("--python", action="append", default=[], metavar="VERSION=PYTHON",
                        help="the python of an existing runtime of VERSION")
    parser.add_argument("--measure-into", help=argparse.SUPPRESS)
    opts = parser.parse_args()
    pythons = dict(p.split("=", 1) for p in opts.python)
    if opts.measure_into:
        with open(opts.measure_into, "w") as f:
            json.dump([[list(key), list(cells)] for key, cells in measured_figures.measure_all().items()], f)
        return 0
    results = {v: r for v in runtime_paths.COMFYUI_VERSIONS if (r := measure_version(v, pythons.get(v))) is not None}
    with open(os.path.join(ROOT, "docs", "benchmark.md")) as f:
        block = measured_figures.render(results, f.read())
    write_block(block, measured_figures.START, measured_figures.END)
    print(block)
    if opts.memory:
        block = memory_block()
        write_block(block, measured_figures.MEMORY_START, measured_figures.MEMORY_END)
        print(block)
    return 0


if __name__ == "__main__":
    sys.exit(main())
