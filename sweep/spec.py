"""The sweep spec (JSON or TOML) and the cells it makes from a workflow: one API prompt per cell.

    [axes]                                   # in order; the cartesian product of all (zip groups move together)
    method = ["none", "APG", {method = "PAG", scale = 3.0}]   # a Guidance Zoo node on the MODEL path, or none
    "method.scale" = [1.0, 3.0]              # an input of whichever method a cell has (skipped where it has none)
    "KSampler.cfg" = [4.0, 8.0]              # <node title, id or unique class type>.<input>
    "6.text" = ["a cat", "a dog"]
    zip = [["KSampler.cfg", "KSampler.steps"]]   # optional: these axes take their values side by side
    seeds = 3                                # optional: repeats with seeds base, base+1, ... (or a list of seeds)
    seed_input = "KSampler.seed"             # optional: which input takes them (default every seed/noise_seed)
    grid = {rows = "method", columns = "KSampler.cfg"}   # optional: one grid; default one per pair of axes
    [set]                                    # optional: fixed values for every cell
    "KSampler.steps" = 8
"""
import itertools
import json
import tomllib
from dataclasses import dataclass

from .graph import SpecError
from .workflow import SEED_NAMES

KEYS = {"axes", "set", "zip", "seeds", "seed_input", "grid"}
METHOD = "method"
SEED = "seed"


@dataclass
class Dim:
    """One dimension of the sweep: a single axis, a zipped group of axes, or the seed repeats."""
    axes: list[str]
    values: list[tuple]

    @property
    def name(self) -> str:
        return " + ".join(self.axes)

    def label(self, index: int) -> str:
        """'APG eta=0' or 'KSampler.cfg 4' for one of this dimension's values."""
        return ", ".join(value_label(a, v) for a, v in zip(self.axes, self.values[index]))


def load_spec(path: str) -> dict:
    """The spec file as a dict (.toml by TOML, anything else by JSON), with its top-level keys checked."""
    try:
        with open(path, "rb") as f:
            spec = tomllib.load(f) if path.endswith(".toml") else json.load(f)
    except (OSError, ValueError) as error:
        raise SpecError(f"spec {path}: {error}") from None
    unknown = set(spec) - KEYS
    if unknown:
        raise SpecError(f"spec {path}: unknown key(s) {sorted(unknown)} (known: {sorted(KEYS)})")
    if not isinstance(spec.get("axes"), dict) or not spec["axes"]:
        raise SpecError(f"spec {path}: needs an 'axes' table, e.g. axes = {{\"KSampler.cfg\" = [4, 8]}}")
    for name, values in spec["axes"].items():
        if not isinstance(values, list) or not values:
            raise SpecError(f"axis '{name}': needs a non-empty list of values, got {values!r}")
    return spec


def value_label(axis: str, value) -> str:
    """How a value reads on a grid: 'APG eta=0' for a method, 'cfg 4' for an input."""
    if axis == METHOD:
        name, settings = method_value(value)
        name = "none (baseline)" if name.strip().lower() in ("none", "baseline", "") else name
        return " ".join(["method", name] + [f"{k}={_fmt(v)}" for k, v in settings.items()])
    return f"{axis.rsplit('.', 1)[-1]} {_fmt(value)}"


def _fmt(value) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def method_value(value) -> tuple[str, dict]:
    """A method axis value ('APG' or {method: 'APG', eta: 0}) as (name, settings)."""
    if isinstance(value, str):
        return value, {}
    if isinstance(value, dict) and isinstance(value.get(METHOD), str):
        return value[METHOD], {k: v for k, v in value.items() if k != METHOD}
    raise SpecError(f"axis 'method': a value is a method name or a table with 'method' = name, got {value!r}")


def dims(spec: dict, prompt: dict) -> list[Dim]:
    """The spec's dimensions in order: axes (zip groups merged at their first axis), then the seeds."""
    axes = spec["axes"]
    groups = spec.get("zip", [])
    if not isinstance(groups, list) or not all(isinstance(g, list) and len(g) > 1 for g in groups):
        raise SpecError("'zip' must be a list of lists of two or more axis names")
    group_of = {}
    for group in groups:
        for axis in group:
            if axis not in axes or axis in group_of:
                raise SpecError(f"zip: '{axis}' is not an axis or is in two groups")
            group_of[axis] = tuple(group)
        if len({len(axes[a]) for a in group}) != 1:
            raise SpecError(f"zip {group}: the axes need the same number of values, have "
                            f"{[len(axes[a]) for a in group]}")
    out, seen = [], set()
    for axis in axes:
        group = group_of.get(axis, (axis,))
        if group not in seen:
            seen.add(group)
            out.append(Dim(list(group), list(zip(*(axes[a] for a in group)))))
    seeds = spec.get("seeds")
    if seeds is not None:
        out.append(Dim([SEED], [(s,) for s in seed_values(seeds, prompt)]))
    return out


def seed_values(seeds, prompt: dict) -> list[int]:
    """`seeds = N` -> the workflow's first seed + 0..N-1; a list -> itself."""
    if isinstance(seeds, int) and not isinstance(seeds, bool) and seeds > 0:
        base = next((n["inputs"][k] for n in prompt.values() for k in SEED_NAMES
                     if isinstance(n["inputs"].get(k), int)), 0)
        return [base + i for i in range(seeds)]
    if isinstance(seeds, list) and seeds and all(isinstance(s, int) and not isinstance(s, bool) for s in seeds):
        return seeds
    raise SpecError(f"'seeds' must be a positive count or a list of integer seeds, got {seeds!r}")


def slug(values: dict) -> str:
    """A file-name-safe summary of a cell's values, e.g. 'APG_cfg-4_seed-2'."""
    parts = [value_label(a, v).removeprefix("method ").replace(" (baseline)", "").replace(" ", "-")
             for a, v in values.items()]
    text = "_".join(parts)
    safe = "".join(c if c.isalnum() or c in "-_.=" else "-" for c in text)
    return safe[:80].strip("-_") or "cell"


def describe_cell(cell) -> str:
    """One line for --dry-run and the CSV: 'method APG eta=0 | cfg 4 | seed 2'."""
    return " | ".join(value_label(a, v) for a, v in cell.values.items() if a not in cell.skipped)


def grid_pairs(spec: dict, dimensions: list[Dim]) -> list[tuple[int, int]]:
    """(row dim, column dim) of each grid: the spec's grid, or every pair of dimensions with more than one value."""
    grid = spec.get("grid")
    names = [d.name for d in dimensions]
    if grid:
        rows, cols = grid.get("rows"), grid.get("columns")
        for axis in (rows, cols):
            if axis not in names:
                raise SpecError(f"grid: '{axis}' is not a dimension of the sweep ({', '.join(names)})")
        return [(names.index(rows), names.index(cols))]
    varying = [i for i, d in enumerate(dimensions) if len(d.values) > 1]
    if len(varying) == 1:
        return [(varying[0], varying[0])]
    return list(itertools.combinations(varying, 2))

