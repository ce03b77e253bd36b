"""Times sampling with every method node of the pack at its node defaults on every tiny family (library mode, CPU)
and counts model evaluations.

Usage: .runtime/0.3.75/venv/bin/python scripts/bench_tiny.py [--steps 8] [--repeats 3] [--families sd15,flux]
       [--methods "CFG,APG,Perp-Neg patch"]
Prints a markdown table, rows = methods, columns = families. A cell is "median ms per step over the repeats,
NFE/calls": evaluated samples per step (NFE) and the model calls they took (an extra pass batched with cond/uncond
adds an NFE but no call); two-model methods count both models. "refused" is a family the node rejects with its
error (the message goes to stderr). Every run is a KSampler (euler, cfg 4) through `execute` of the node class.
Inputs the node cannot default are built here: a CONDITIONING (a second prompt), a style LATENT, and a second MODEL
(the same tiny family built with another seed, counted too).
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "harness"))
import runtime_paths  # noqa: E402

runtime_paths.register_pack()
import torch  # noqa: E402
import tiny_models as tm  # noqa: E402

from guidance_zoo.nodes import NODES  # noqa: E402
from guidance_zoo.nodes.common import PREFIX, NodeInputError  # noqa: E402
from guidance_zoo.nodes.methods import METHODS as ALL_METHODS  # noqa: E402

CFG = 4.0
CLASSES = {node.define_schema().node_id: node for node in NODES}


def patch_node(method):
    """The method's first MODEL -> MODEL node (its row here), or None (a sampler, a schedule)."""
    for node_id in method.node_ids(PREFIX):
        outputs = CLASSES[node_id].define_schema().outputs
        if len(outputs) == 1 and outputs[0].io_type == "MODEL":
            return CLASSES[node_id]
    return None


# row name (the method's METHOD_INFO bench_name) -> node class, in the README's order (None: the plain KSampler)
METHODS = {"CFG": None, **{method.bench_name: patch_node(method) for method in ALL_METHODS if patch_node(method)}}


class Links:
    """The linked inputs of one family, by input type: another prompt, a style latent, a second counted model."""

    def __init__(self, family: str):
        self.prompt = tm.make_conds(family, seed=7)[0]
        shape = (1,) + tm.FAMILIES[family][2]
        self.style = {"samples": torch.randn(shape, generator=torch.Generator().manual_seed(3))}
        self.second, self.second_counter = tm.counted(tm.make_model(family, seed=1))

    def value(self, node_input):
        return {"CONDITIONING": self.prompt, "LATENT": self.style, "MODEL": self.second}.get(node_input.io_type)


def node_inputs(node, model, links: Links) -> dict:
    """Every input of the node: its default, the first choice of a combo, or a link; optional links left out."""
    values = {"model": model}
    for node_input in node.define_schema().inputs[1:]:
        value = getattr(node_input, "default", None)
        if value is None and node_input.io_type == "COMBO":
            value = node_input.options[0]
        if value is None:
            value = None if getattr(node_input, "optional", False) else links.value(node_input)
        if value is not None:
            values[node_input.id] = value
    return values


def bench(model, family: str, links: Links, node, steps: int, repeats: int) -> str:
    counted, counter = tm.counted(model)
    try:
        patched = counted if node is None else node.execute(**node_inputs(node, counted, links)).result[0]
        tm.ksample(patched, family, steps=2, cfg=CFG)
    except (NodeInputError, RuntimeError) as error:
        print(f"  refused: {error}", file=sys.stderr)
        return "refused"
    counters = (counter, links.second_counter)
    times = []
    for _ in range(repeats):
        for c in counters:
            c.samples = c.calls = 0
        start = time.perf_counter()
        try:
            tm.ksample(patched, family, steps=steps, cfg=CFG)
        except RuntimeError as error:  # a guard that stops a run at these settings (RCFG's blow-up check)
            print(f"  stopped: {error}", file=sys.stderr)
            return "stopped"
        times.append((time.perf_counter() - start) * 1000 / steps)
    samples, calls = (sum(getattr(c, name) for c in counters) / steps for name in ("samples", "calls"))
    return f"{statistics.median(times):.1f} ms, {samples:.3g}/{calls:.3g}"


def pick(text: str | None, names, what: str) -> list:
    if text is None:
        return list(names)
    lower = {name.lower(): name for name in names}
    wanted = [part.strip().lower() for part in text.split(",") if part.strip()]
    unknown = [w for w in wanted if w not in lower]
    if unknown:
        sys.exit(f"unknown {what}: {', '.join(unknown)}; have {', '.join(names)}")
    return [lower[w] for w in wanted]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--families", help="comma-separated subset of " + ", ".join(tm.FAMILIES))
    parser.add_argument("--columns", type=int, default=8, help="families per table")
    parser.add_argument("--methods", help="comma-separated subset of the row names (case-insensitive)")
    opts = parser.parse_args()
    families, methods = pick(opts.families, tm.FAMILIES, "families"), pick(opts.methods, METHODS, "methods")
    cells, headers = {}, []
    for family in families:
        model, links = tm.make_model(family), Links(family)
        headers.append(f"{family} ({sum(p.numel() for p in model.model.diffusion_model.parameters()) / 1e6:.2f}M)")
        for method in methods:
            print(f"{method} on {family}", file=sys.stderr)
            cells[method, family] = bench(model, family, links, METHODS[method], opts.steps, opts.repeats)
    for start in range(0, len(families), opts.columns):
        group = families[start:start + opts.columns]
        print(f"\n| method | {' | '.join(headers[start:start + opts.columns])} |")
        print("|---|" + "---|" * len(group))
        for method in methods:
            print(f"| {method} | {' | '.join(cells[method, family] for family in group)} |")


if __name__ == "__main__":
    main()
