"""An API-format prompt as the sweep sees it: nodes addressed by id or title, typed inputs, and the method node.

Every fact about a node class comes from the server's GET /object_info, so any node (ours or not) is addressable
and any Guidance Zoo model-patch node (MODEL in, MODEL out) is a method, without a list kept here.
"""
import copy

OUR_PREFIX = "GuidanceZoo"
OUR_SUFFIX = " (Guidance Zoo)"
LINK_FREE_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}


class SpecError(ValueError):
    """The sweep spec does not fit the workflow or the servers: one line that says what and where."""


def input_spec(info: dict, name: str) -> tuple[str, dict] | None:
    """(type, options) of a node class's input, COMBO with options["options"] for choice lists; None if absent."""
    for section in ("required", "optional"):
        spec = (info.get("input", {}).get(section) or {}).get(name)
        if spec is not None:
            typ, opts = spec[0], dict(spec[1]) if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if isinstance(typ, list):
                typ, opts["options"] = "COMBO", typ
            return typ, opts
    return None


def input_names(info: dict) -> list[str]:
    """Every input of a node class, required first."""
    return [n for sec in ("required", "optional") for n in (info.get("input", {}).get(sec) or {})]


def find_node(prompt: dict, ref: str) -> str:
    """The id of the node that `ref` names: a node id, a title, or a class type that only one node has."""
    if ref in prompt:
        return ref
    for field in (lambda n: n.get("_meta", {}).get("title"), lambda n: n["class_type"]):
        found = [k for k, n in prompt.items() if field(n) == ref]
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise SpecError(f"'{ref}' names {len(found)} nodes (ids {', '.join(found)}): use a node id")
    known = ", ".join(f"{k} '{n.get('_meta', {}).get('title', n['class_type'])}'" for k, n in prompt.items())
    raise SpecError(f"no node with id, title or type '{ref}' in the workflow (nodes: {known})")


def check_value(where: str, info: dict, name: str, value) -> None:
    """Raise SpecError unless `value` fits the input `name` of a node class (type, range, choices)."""
    spec = input_spec(info, name)
    if spec is None:
        raise SpecError(f"{where}: {info.get('name')} has no input '{name}' (inputs: {', '.join(input_names(info))})")
    typ, opts = spec
    ok = {"INT": isinstance(value, int) and not isinstance(value, bool),
          "FLOAT": isinstance(value, (int, float)) and not isinstance(value, bool),
          "STRING": isinstance(value, str), "BOOLEAN": isinstance(value, bool),
          "COMBO": value in opts.get("options", [])}.get(typ)
    if ok is None:
        raise SpecError(f"{where}: input '{name}' is a {typ} socket, not a setting (link it in the workflow)")
    if not ok:
        wanted = f"one of {opts['options'][:12]}" if typ == "COMBO" else ("an " if typ == "INT" else "a ") + typ
        raise SpecError(f"{where}: '{name}' takes {wanted}, got {value!r}")
    if typ in ("INT", "FLOAT") and not opts.get("min", value) <= value <= opts.get("max", value):
        raise SpecError(f"{where}: '{name}' = {value!r} is outside [{opts.get('min')}, {opts.get('max')}]")


def method_nodes(object_info: dict) -> dict:
    """The pack's model-patch nodes: class type -> info (MODEL 'model' in, one MODEL out)."""
    return {k: v for k, v in object_info.items() if k.startswith(OUR_PREFIX) and v.get("output") == ["MODEL"]
            and (input_spec(v, "model") or ("",))[0] == "MODEL"}


def method_name(class_type: str, object_info: dict) -> str:
    """The short name users see: the node's display name without ' (Guidance Zoo)'."""
    return object_info.get(class_type, {}).get("display_name", class_type).removesuffix(OUR_SUFFIX)


def resolve_method(name: str, object_info: dict) -> str | None:
    """The class type of a method named by class type, short class ('APG') or display name; None for 'none'."""
    if name.strip().lower() in ("none", "baseline", ""):
        return None
    methods = method_nodes(object_info)
    wanted = name.strip().lower()
    for class_type in methods:
        if wanted in (class_type.lower(), class_type.removeprefix(OUR_PREFIX).lower(),
                      method_name(class_type, object_info).lower(), methods[class_type]["display_name"].lower()):
            return class_type
    known = ", ".join(sorted(method_name(k, object_info) for k in methods))
    raise SpecError(f"unknown method '{name}' (methods: none, {known})")


def _links_to(prompt: dict, node_id: str) -> list[tuple[str, str]]:
    """(node id, input name) of every input linked to an output of node_id."""
    return [(k, name) for k, n in prompt.items() for name, v in n["inputs"].items()
            if isinstance(v, list) and len(v) == 2 and str(v[0]) == node_id]


def _model_ends(prompt: dict, object_info: dict) -> list[tuple[str, str]]:
    """(node id, input) of each MODEL input of a node that outputs no MODEL: the samplers/guiders of the graph."""
    ends = []
    for k, node in prompt.items():
        info = object_info.get(node["class_type"], {})
        if "MODEL" in info.get("output", []):
            continue
        ends += [(k, name) for name, v in node["inputs"].items()
                 if isinstance(v, list) and (input_spec(info, name) or ("",))[0] == "MODEL"]
    return ends


def _method_inputs(class_type: str, object_info: dict, keep: dict) -> dict:
    """A method node's inputs: its defaults, then the links of `keep` it also has."""
    info = object_info[class_type]
    inputs = {}
    for name in input_names(info):
        typ, opts = input_spec(info, name)
        if name in keep and (isinstance(keep[name], list) or typ in LINK_FREE_TYPES):
            inputs[name] = keep[name]
        elif "default" in opts:
            inputs[name] = opts["default"]
        elif typ == "COMBO" and opts.get("options") and name in info["input"].get("required", {}):
            inputs[name] = opts["options"][0]
        elif name in info["input"].get("required", {}):
            raise SpecError(f"method {method_name(class_type, object_info)} needs its input '{name}' ({typ}) "
                            "connected: put the node in the workflow and address its inputs by node")
    return inputs


def set_method(prompt: dict, class_type: str | None, object_info: dict) -> tuple[dict, list[str]]:
    """A copy of the prompt with the method on the MODEL path before the sampler(s), swapping the pack's existing
    method node(s) that feed a sampler (None removes them: the baseline); also returns the method nodes' ids."""
    prompt = copy.deepcopy(prompt)
    methods = method_nodes(object_info)
    ends = _model_ends(prompt, object_info)
    existing = sorted({str(prompt[k]["inputs"][n][0]) for k, n in ends
                       if prompt[str(prompt[k]["inputs"][n][0])]["class_type"] in methods})
    if not existing and class_type is None:
        return prompt, []
    if existing:
        for node_id in existing:
            old = prompt[node_id]
            if class_type is None:
                for k, name in _links_to(prompt, node_id):
                    prompt[k]["inputs"][name] = copy.deepcopy(old["inputs"]["model"])
                del prompt[node_id]
            else:
                prompt[node_id] = {"class_type": class_type, "inputs": _method_inputs(class_type, object_info,
                                                                                      old["inputs"]),
                                   "_meta": {"title": object_info[class_type]["display_name"]}}
        return prompt, ([] if class_type is None else existing)
    if not ends:
        raise SpecError("the workflow has no sampler that takes a MODEL: nowhere to put the method")
    added = {}
    for k, name in ends:
        source = tuple(prompt[k]["inputs"][name])
        if source not in added:
            added[source] = str(max((int(i) for i in prompt if i.isdigit()), default=0) + 1)
            prompt[added[source]] = {"class_type": class_type,
                                     "inputs": _method_inputs(class_type, object_info, {"model": list(source)}),
                                     "_meta": {"title": object_info[class_type]["display_name"]}}
        prompt[k]["inputs"][name] = [added[source], 0]
    return prompt, sorted(added.values())
