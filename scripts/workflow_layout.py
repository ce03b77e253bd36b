"""Graph-editor workflows (format 0.4) laid out for reading on open: the generators' shared graph builder.

Nodes flow left to right in columns (a node's column is one more than its deepest input's, or a chosen node's),
stacked top down without overlaps; the method node(s) get a titled group at the
top of their columns; a MarkdownNote spans the top. extra.ds (offset, scale) is chosen so the whole graph lies inside
the part of a 1920 x 1080 window that the ComfyUI frontend (1.32 and 1.49) leaves free: below its tab bar,
breadcrumb and run bar, right of its side bar, and clear of the minimap in the bottom-right corner.
"""
import math
import uuid

TITLE = 30  # LiteGraph.NODE_TITLE_HEIGHT: the title bar sits above node.pos
SLOT, WIDGET = 20, 24  # LiteGraph's slot row height and widget row height (widget height 20 + margin 4)
COLUMN_GAP, ROW_GAP = 70, 50
GROUP_PAD, GROUP_TITLE = 14, 40
VIEW = (80, 150, 1890, 1050)  # free screen rect (left, top, right, bottom) in a 1920 x 1080 window
MINIMAP = (1640, 800, 1920, 1080)  # the frontend's minimap and canvas buttons
MIN_SCALE = 0.6  # below this the frontend draws nodes without their widgets (low-quality rendering)


def min_height(rows: int, widgets: int) -> int:
    """LiteGraph's computeSize height of a node with `rows` slot rows and `widgets` widget rows (title excluded)."""
    return rows * SLOT + (14 + widgets * WIDGET if widgets else 6)


class Graph:
    """Nodes and links of one workflow; positions, group, note and view are computed by finish()."""

    def __init__(self):
        self.nodes, self.links, self.members, self.below = [], [], [], {}

    def node(self, kind: str, widgets, inputs=(), outputs=(), title=None, color=None, width=340, height=0,
             member=False, below=None) -> dict:
        """Add a node (in the column of `below` if given); its height is at least the frontend's computeSize."""
        rows = max(len(inputs), len(outputs))
        node = {"id": len(self.nodes) + 1, "type": kind, "pos": [0, 0],
                "size": [width, max(height, min_height(rows, len(widgets)))], "flags": {}, "order": 0, "mode": 0,
                "inputs": [{"name": n, "type": t, "link": None} for n, t in inputs],
                "outputs": [{"name": n, "type": t, "links": [], "slot_index": i} for i, (n, t) in enumerate(outputs)],
                "properties": {"Node name for S&R": kind}, "widgets_values": list(widgets)}
        if title:
            node["title"] = title
        if color:
            node["color"], node["bgcolor"] = color
        self.nodes.append(node)
        if member:
            self.members.append(node)
        if below is not None:
            self.below[node["id"]] = below["id"]
        return node

    def link(self, source: dict, slot: int, target: dict, name: str) -> None:
        """Connect source's output slot to target's input called name."""
        link_id = len(self.links) + 1
        kind = source["outputs"][slot]["type"]
        source["outputs"][slot]["links"].append(link_id)
        index = next(i for i, entry in enumerate(target["inputs"]) if entry["name"] == name)
        target["inputs"][index]["link"] = link_id
        self.links.append([link_id, source["id"], slot, target["id"], index, kind])

    def inputs_of(self, node: dict) -> set[int]:
        """Ids of the nodes feeding node."""
        return {link[1] for link in self.links if link[3] == node["id"]}

    def finish(self, name: str, group_title: str, note: str, note_height) -> dict:
        """The workflow dict: execution order, columns, group, note on top and a view that shows it all.
        note_height(width) is the height the note needs at that width."""
        order = self._execution_order()
        for index, node_id in enumerate(order):
            self.nodes[node_id - 1]["order"] = index
        columns = self._columns(order)
        lefts = _lefts(columns)
        width = lefts[-1] - COLUMN_GAP if len(columns) > 2 else lefts[-1] + max(n["size"][0] for n in columns[-1])
        height = note_height(width)
        group = self._place(columns, lefts, height + TITLE + ROW_GAP, len(columns) > 2)
        right = max(n["pos"][0] + n["size"][0] for n in self.nodes)
        self._add_note(note, [0, TITLE], [width, height])
        bounds = (min(0, group[0]), 0, right, max(n["pos"][1] + n["size"][1] for n in self.nodes))
        return {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"guidance-zoo/{name}")), "revision": 0,
                "last_node_id": len(self.nodes), "last_link_id": len(self.links), "nodes": self.nodes,
                "links": self.links, "groups": [{"id": 1, "title": group_title, "bounding": group, "color": "#3f789e",
                                                 "font_size": 24, "flags": {}}],
                "config": {}, "extra": {"ds": view(bounds, self.nodes), "frontendVersion": "1.32.9"}, "version": 0.4}

    def _execution_order(self) -> list[int]:
        deps = {n["id"]: self.inputs_of(n) for n in self.nodes}
        done: list[int] = []
        while len(done) < len(self.nodes):
            done.append(next(n["id"] for n in self.nodes if n["id"] not in done and deps[n["id"]] <= set(done)))
        return done

    def _columns(self, order: list[int]) -> list[list[dict]]:
        """Nodes per column: one right of their deepest input (or under the node given as `below`)."""
        column = {}
        for node_id in order:
            inputs = self.inputs_of(self.nodes[node_id - 1])
            column[node_id] = 1 + max((column[i] for i in inputs), default=-1)
            if node_id in self.below:
                column[node_id] = column[self.below[node_id]]
        columns: list[list[dict]] = [[] for _ in range(max(column.values()) + 1)]
        for node in self.nodes:  # builder order within a column; group members first
            columns[column[node["id"]]].append(node)
        for nodes in columns:
            nodes.sort(key=lambda n: n not in self.members)
        return columns

    def _place(self, columns: list[list[dict]], lefts: list[int], top: int, last_on_top: bool) -> list[int]:
        """Set every node's pos (the last column from the very top, beside the note, if last_on_top); returns the
        group's [x, y, w, h] around the members."""
        member_columns = [i for i, nodes in enumerate(columns) if any(n in self.members for n in nodes)]
        inside = set(range(member_columns[0], member_columns[-1] + 1))
        y_member = top + GROUP_TITLE + GROUP_PAD + TITLE
        bottom = y_member
        for i, nodes in enumerate(columns):
            y = y_member
            for node in (n for n in nodes if n in self.members):
                node["pos"] = [lefts[i], y]
                y += node["size"][1] + ROW_GAP
                bottom = max(bottom, node["pos"][1] + node["size"][1])
        group = [lefts[member_columns[0]] - GROUP_PAD, top, 0, bottom + GROUP_PAD - top]
        group[2] = max(n["pos"][0] + n["size"][0] for n in self.members) + GROUP_PAD - group[0]
        for i, nodes in enumerate(columns):
            y = (group[1] + group[3] + ROW_GAP + TITLE) if i in inside else top + TITLE
            if last_on_top and i == len(columns) - 1 and i not in inside:
                y = TITLE
            for node in (n for n in nodes if n not in self.members):
                node["pos"] = [lefts[i], y]
                y += node["size"][1] + TITLE + ROW_GAP
        return group

    def _add_note(self, text: str, pos: list[int], size: list[int]) -> None:
        node = self.node("MarkdownNote", [text], width=size[0], height=size[1], title="What this workflow shows")
        node["pos"], node["order"] = pos, len(self.nodes) - 1
        node["color"], node["bgcolor"] = "#432", "#653"


def _lefts(columns: list[list[dict]]) -> list[int]:
    """Left edge of every column."""
    x, lefts = 0, []
    for nodes in columns:
        lefts.append(x)
        x += max(n["size"][0] for n in nodes) + COLUMN_GAP
    return lefts


def view(bounds: tuple, nodes: list[dict]) -> dict:
    """extra.ds: the largest scale (at most 1) that fits bounds (title bars included) into VIEW, clear of MINIMAP."""
    left, top, right, bottom = bounds[0], bounds[1], bounds[2], bounds[3]
    for free in (VIEW, (VIEW[0], VIEW[1], VIEW[2], MINIMAP[1] - 10), (VIEW[0], VIEW[1], MINIMAP[0] - 10, VIEW[3])):
        fit = min(1.0, (free[2] - free[0]) / (right - left), (free[3] - free[1]) / (bottom - top))
        scale = math.floor(fit * 1000) / 1000
        offset = [free[0] / scale - left, free[1] / scale - top]
        if not any(_hits_minimap(n, offset, scale) for n in nodes):
            break
    else:
        raise ValueError("no view keeps the graph clear of the minimap")
    if scale < MIN_SCALE:
        raise ValueError(f"the graph needs scale {scale:.3f} to fit; the frontend hides widgets below {MIN_SCALE}")
    return {"scale": scale, "offset": [math.ceil(offset[0]), math.ceil(offset[1])]}


def _hits_minimap(node: dict, offset: list[float], scale: float) -> bool:
    x0 = (node["pos"][0] + offset[0]) * scale
    y0 = (node["pos"][1] - TITLE + offset[1]) * scale
    x1, y1 = x0 + node["size"][0] * scale, y0 + (node["size"][1] + TITLE) * scale
    return x1 > MINIMAP[0] and y1 > MINIMAP[1] and x0 < MINIMAP[2] and y0 < MINIMAP[3]
