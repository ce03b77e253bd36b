"""Graph-editor (UI) workflow JSON -> API-format prompt, for the sweep runner, the demo and the tests.

`ui_to_api(workflow, object_info)` converts a workflow as the ComfyUI frontend saves it (`nodes`, `links`,
`widgets_values`, "version": 0.4) into the API format that POST /prompt takes
(`{"<id>": {"class_type", "inputs", "_meta": {"title"}}}`); an API-format prompt comes back as a copy:
- widget values are matched to input names in the order GET /object_info gives (`input_order`, required then
  optional), skipping inputs that are sockets only (MODEL, CLIP, ... or `forceInput`);
- an INT input named seed/noise_seed or flagged `control_after_generate` is followed in `widgets_values` by the
  frontend-only "control_after_generate" value ("randomize", "fixed", ...): it is skipped; likewise the
  upload button value after an `image_upload` combo;
- a widget converted to an input socket and linked (an `inputs` entry with `"widget": {...}` and a link) takes
  the link instead of the widget value;
- links (list form [id, from, from_slot, to, to_slot, type] or dict form) become `["<from id>", from_slot]`;
  Reroute nodes are followed, PrimitiveNode values are inlined, bypassed nodes (mode 4) pass their matching-type
  input through, muted nodes (mode 2) and Note/MarkdownNote are dropped.
Subgraphs are not supported (a clear error).
"""
import copy
import json
import re

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
FRONTEND_ONLY = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode", "Label (rgthree)"}  # never sent to the server
SEED_NAMES = {"seed", "noise_seed"}
MODE_MUTED, MODE_BYPASS = 2, 4


class WorkflowError(ValueError):
    """The workflow cannot be converted (unknown node type, subgraph, broken link...)."""


def load_workflow(path: str) -> dict:
    """The JSON of a workflow file (UI or API format)."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# ------------------------------------------------------------------------------------------------------------------
# UI -> API
# ------------------------------------------------------------------------------------------------------------------

def _links(workflow: dict) -> dict:
    out = {}
    for link in workflow.get("links", []) or []:
        if isinstance(link, dict):
            lid, src, slot, dst, dslot, typ = (link["id"], link["origin_id"], link["origin_slot"], link["target_id"],
                                               link["target_slot"], link.get("type"))
        else:
            lid, src, slot, dst, dslot, typ = link[:6]
        out[lid] = (src, slot, dst, dslot, typ)
    return out


def _input_specs(info: dict):
    """(name, type, options) for every input of a node class, in the frontend's widget order."""
    inputs = info.get("input", {})
    order = info.get("input_order") or {sec: list(inputs.get(sec, {})) for sec in ("required", "optional")}
    for section in ("required", "optional"):
        for name in order.get(section, []):
            spec = inputs.get(section, {}).get(name)
            if spec is None:
                continue
            typ = spec[0]
            opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            if isinstance(typ, str) and "," in typ and opts.get("widgetType"):
                typ = opts["widgetType"]  # a multi-type input ("FLOAT,INT") is drawn as its widget type
            yield name, ("COMBO" if isinstance(typ, list) else typ), opts


def _is_widget(typ: str, opts: dict) -> bool:
    return typ in WIDGET_TYPES and not opts.get("forceInput") and not opts.get("rawLink")


def _has_control_value(name: str, typ: str, opts: dict) -> bool:
    return typ == "INT" and (opts.get("control_after_generate") or name in SEED_NAMES)


def ui_to_api(workflow: dict, object_info: dict) -> dict:
    if "nodes" not in workflow:
        if all(isinstance(v, dict) and "class_type" in v for v in workflow.values()):
            return copy.deepcopy(workflow)  # already API format
        raise WorkflowError("not a graph-editor workflow (no 'nodes')")
    if (workflow.get("definitions") or {}).get("subgraphs"):
        raise WorkflowError("subgraphs are not supported; convert them to nodes first")
    nodes = {n["id"]: n for n in workflow["nodes"]}
    links = _links(workflow)

    def resolve(link_id, seen=()):
        """Where a link really comes from: ('link', node_id, slot), ('value', v) or None (nothing)."""
        if link_id is None:
            return None
        if link_id not in links:
            raise WorkflowError(f"link {link_id} is not in the links array")
        src, slot, _, _, typ = links[link_id]
        node = nodes.get(src)
        if node is None:
            raise WorkflowError(f"link {link_id} comes from missing node {src}")
        if src in seen:
            raise WorkflowError(f"cycle through node {src}")
        kind = node["type"]
        if kind == "Reroute":
            ins = node.get("inputs") or []
            return resolve(ins[0].get("link") if ins else None, seen + (src,))
        if kind == "PrimitiveNode":  # the frontend-only one; PrimitiveInt/String/... are real backend nodes
            values = node.get("widgets_values") or []
            return ("value", values[0]) if values else None
        mode = node.get("mode", 0)
        if mode == MODE_MUTED:
            return None
        if mode == MODE_BYPASS:
            outputs = node.get("outputs") or []
            out_type = outputs[slot].get("type", typ) if slot < len(outputs) else typ
            for inp in node.get("inputs") or []:
                if inp.get("type") == out_type and inp.get("link") is not None:
                    return resolve(inp["link"], seen + (src,))
            return None
        return ("link", str(src), slot)

    prompt = {}
    for node_id, node in sorted(nodes.items(), key=lambda kv: kv[0] if isinstance(kv[0], int) else str(kv[0])):
        kind = node["type"]
        if kind in FRONTEND_ONLY or node.get("mode", 0) in (MODE_MUTED, MODE_BYPASS):
            continue
        if kind not in object_info:
            if re.fullmatch(r"[0-9a-f-]{36}", kind):
                raise WorkflowError(f"node {node_id} is a subgraph instance; subgraphs are not supported")
            raise WorkflowError(f"node {node_id}: unknown node type {kind!r} (is its pack installed?)")
        info = object_info[kind]
        linked = {inp["name"]: inp.get("link") for inp in node.get("inputs") or []}
        values = node.get("widgets_values")
        inputs = {}
        idx = 0
        for name, typ, opts in _input_specs(info):
            if _is_widget(typ, opts):
                if isinstance(values, dict):
                    value, present = values.get(name), name in values
                else:
                    values = values or []
                    present = idx < len(values)
                    value = values[idx] if present else None
                    idx += 1
                    if _has_control_value(name, typ, opts):
                        idx += 1
                    if opts.get("image_upload") or opts.get("video_upload") or opts.get("audio_upload"):
                        idx += 1 if idx < len(values) and values[idx] in ("image", "video", "audio") else 0
                if linked.get(name) is not None:
                    source = resolve(linked[name])
                    if source is not None:
                        inputs[name] = source[1] if source[0] == "value" else [source[1], source[2]]
                        continue
                if present:
                    inputs[name] = value
                elif "default" in opts:
                    inputs[name] = opts["default"]
            elif linked.get(name) is not None:
                source = resolve(linked[name])
                if source is not None:
                    inputs[name] = source[1] if source[0] == "value" else [source[1], source[2]]
        prompt[str(node_id)] = {"class_type": kind, "inputs": inputs,
                                "_meta": {"title": node.get("title") or info.get("display_name") or kind}}
    return prompt
