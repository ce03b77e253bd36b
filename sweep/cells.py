"""The cells of a sweep: the spec's dimensions crossed, each cell a finished API prompt with a stable key (the
hash of its prompt: --resume matches on it) and a file name."""
import hashlib
import itertools
import json
from dataclasses import dataclass, field

from .graph import SpecError, check_value, find_node, input_names, input_spec, resolve_method, set_method
from .spec import METHOD, SEED, Dim, dims, method_value, slug
from .workflow import SEED_NAMES


@dataclass
class Cell:
    index: int
    coords: tuple
    values: dict
    prompt: dict
    key: str = ""
    name: str = ""
    skipped: list = field(default_factory=list)


def make_cells(spec: dict, prompt: dict, object_info: dict) -> tuple[list[Dim], list[Cell]]:
    """Every cell of the sweep, each with its finished API prompt; SpecError on the first thing that cannot work."""
    prompt = fixed_values(spec, prompt, object_info)
    dimensions = dims(spec, prompt)
    targets = {a: _target(a, prompt, object_info) for d in dimensions for a in d.axes if a not in (METHOD, SEED)}
    cells = []
    for coords in itertools.product(*(range(len(d.values)) for d in dimensions)):
        values = {a: d.values[i][j] for d, i in zip(dimensions, coords) for j, a in enumerate(d.axes)}
        cell = Cell(len(cells), coords, values, {})
        cell.prompt = _cell_prompt(spec, prompt, object_info, values, targets, cell.skipped)
        cell.key = hashlib.sha1(json.dumps(_strip_meta(cell.prompt), sort_keys=True).encode()).hexdigest()[:16]
        cell.name = f"{cell.index:04d}_{slug(values)}"
        cells.append(cell)
    for axis in targets:
        if axis.startswith(METHOD + ".") and all(axis in c.skipped for c in cells):
            raise SpecError(f"axis '{axis}': none of the methods has an input '{axis.split('.', 1)[1]}'")
    return dimensions, cells


def fixed_values(spec: dict, prompt: dict, object_info: dict) -> dict:
    """A copy of the prompt with the spec's `set` table written in (each value checked)."""
    fixed = spec.get("set", {})
    if not isinstance(fixed, dict):
        raise SpecError("'set' must be a table of <node>.<input> = value")
    prompt = json.loads(json.dumps(prompt))
    for address, value in fixed.items():
        node_id, name = _target(address, prompt, object_info)
        if node_id == METHOD:
            raise SpecError(f"set '{address}': set a method's inputs in the method axis ({{method = ..., x = ...}})")
        _write(prompt, [node_id], name, value, object_info, f"set '{address}'")
    return prompt


def _target(axis: str, prompt: dict, object_info: dict) -> tuple[str, str]:
    """(node id or 'method', input) that an axis name addresses."""
    if "." not in axis:
        raise SpecError(f"axis '{axis}': name it <node title or id>.<input> (or 'method', 'method.<input>')")
    node, name = axis.rsplit(".", 1)
    if node == METHOD:
        return METHOD, name
    try:
        node_id = find_node(prompt, node)
    except SpecError as error:
        raise SpecError(f"axis '{axis}': {error}") from None
    info = object_info.get(prompt[node_id]["class_type"], {})
    if input_spec(info, name) is None:
        raise SpecError(f"axis '{axis}': node {node_id} ({prompt[node_id]['class_type']}) has no input '{name}' "
                        f"(inputs: {', '.join(input_names(info))})")
    return node_id, name


def _cell_prompt(spec, prompt, object_info, values, targets, skipped) -> dict:
    """The API prompt of one cell: the method set, then every axis value and the seed written in (checked)."""
    method_ids = []
    if METHOD in values:
        name, settings = method_value(values[METHOD])
        class_type = resolve_method(name, object_info)
        prompt, method_ids = set_method(prompt, class_type, object_info)
        for key, value in settings.items():
            _write(prompt, method_ids, key, value, object_info, f"method {name}")
    else:
        prompt = json.loads(json.dumps(prompt))
    for axis, (node_id, name) in targets.items():
        ids = method_ids if node_id == METHOD else [node_id]
        if node_id == METHOD and not any(name in _inputs_of(prompt[i], object_info) for i in ids):
            skipped.append(axis)
            continue
        _write(prompt, ids, name, values[axis], object_info, f"axis '{axis}'")
    if SEED in values:
        _write_seed(spec, prompt, values[SEED], object_info)
    return prompt


def _inputs_of(node: dict, object_info: dict) -> set:
    info = object_info.get(node["class_type"], {}).get("input", {})
    return set(info.get("required", {})) | set(info.get("optional", {}))


def _write(prompt: dict, ids: list, name: str, value, object_info: dict, where: str) -> None:
    """Set input `name` of the nodes `ids` to `value`, after checking it fits each node's class."""
    for node_id in ids:
        check_value(where, object_info.get(prompt[node_id]["class_type"], {}), name, value)
        prompt[node_id]["inputs"][name] = value


def _write_seed(spec: dict, prompt: dict, seed: int, object_info: dict) -> None:
    """The seed into spec['seed_input'], or into every unlinked seed/noise_seed input."""
    if spec.get("seed_input"):
        node_id, name = _target(spec["seed_input"], prompt, object_info)
        _write(prompt, [node_id], name, seed, object_info, f"seed_input '{spec['seed_input']}'")
        return
    found = [(k, s) for k, n in prompt.items() for s in SEED_NAMES if isinstance(n["inputs"].get(s), int)]
    if not found:
        raise SpecError("'seeds': the workflow has no seed/noise_seed input to set; name one with seed_input")
    for node_id, name in found:
        _write(prompt, [node_id], name, seed, object_info, "seeds")


def _strip_meta(prompt: dict) -> dict:
    return {k: {"class_type": n["class_type"], "inputs": n["inputs"]} for k, n in prompt.items()}
