"""Times sampling of every tiny family with plain CFG, APG and PAG (library mode, CPU) and counts model evaluations.

Usage: .runtime/venv/bin/python scripts/bench_tiny.py [--steps 8] [--repeats 3]
Prints a markdown table: median ms per step over the repeats, evaluated samples (NFE) per step and the model
calls they took (an extra pass batched with cond/uncond adds an NFE but no call).
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests"))
import runtime_paths  # noqa: E402

runtime_paths.register_pack()
import tiny_models as tm  # noqa: E402

from guidance_zoo.nodes.apg import APG  # noqa: E402
from guidance_zoo.nodes.pag import PAG  # noqa: E402

SETTINGS = {
    "cfg 4": lambda m: m,
    "APG (defaults)": lambda m: APG.execute(m, 0.0, 15.0, -0.5).result[0],
    "PAG 3 (default layers)": lambda m: PAG.execute(m, 3.0, "").result[0],
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    opts = parser.parse_args()
    print(f"| family | params | {' | '.join(SETTINGS)} |")
    print("|---|---|" + "---|" * len(SETTINGS))
    for family in tm.FAMILIES:
        model = tm.make_model(family)
        params = sum(p.numel() for p in model.model.diffusion_model.parameters())
        cells = []
        for patch in SETTINGS.values():
            counted, counter = tm.counted(patch(model))
            tm.ksample(counted, family, steps=2)
            times = []
            for _ in range(opts.repeats):
                counter.samples = counter.calls = 0
                start = time.perf_counter()
                tm.ksample(counted, family, steps=opts.steps, cfg=4.0)
                times.append((time.perf_counter() - start) * 1000 / opts.steps)
            cells.append(f"{statistics.median(times):.1f} ms, {counter.samples / opts.steps:g} NFE "
                         f"in {counter.calls / opts.steps:g} call")
        print(f"| {family} | {params / 1e6:.2f}M | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
