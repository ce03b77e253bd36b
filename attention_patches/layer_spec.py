"""The layer-spec grammar ('middle', 'input 4-8', 'double 0-3, single 10', 'output 1:0-2'), read in one linear scan
(no backtracking pattern), with a length cap and error messages that quote at most QUOTE_CHARS of the input."""
from __future__ import annotations

from dataclasses import dataclass

MAX_SPEC_CHARS = 2000
QUOTE_CHARS = 80
DIGITS = "0123456789"


@dataclass(frozen=True)
class LayerItem:
    """One comma-separated item: a group name, an optional index range and an optional transformer-index range."""
    text: str
    group: str
    first: int | None = None
    last: int | None = None
    sub_first: int | None = None
    sub_last: int | None = None


def quoted(text: str, limit: int = QUOTE_CHARS) -> str:
    """text in quotes, cut to about `limit` characters (with its length noted) when longer."""
    if len(text) <= limit:
        return f"'{text}'"
    return f"'{text[:limit - 3]}...' ({len(text)} characters)"


class _Scanner:
    """A cursor over one item; every method consumes what it reads, so a scan reads each character once."""

    def __init__(self, text: str):
        self.text, self.pos = text, 0

    def run(self, allowed: str) -> str:
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] in allowed:
            self.pos += 1
        return self.text[start:self.pos]

    def spaces(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def literal(self, char: str) -> bool:
        if self.text.startswith(char, self.pos):
            self.pos += 1
            return True
        return False

    def index_range(self) -> tuple[int | None, int | None]:
        """'a' or 'a - b' (either may be absent); the range (a, b), b = a for a single index."""
        digits = self.run(DIGITS)
        if not digits:
            return None, None
        mark = self.pos
        self.spaces()
        if self.literal("-"):
            self.spaces()
            last = self.run(DIGITS)
            if last:
                return int(digits), int(last)
        self.pos = mark
        return int(digits), int(digits)


def parse_item(text: str) -> LayerItem | None:
    """The item 'group [a[-b]] [:s[-t]]' (spaces allowed around the numbers, any case), or None if it is not one."""
    scan = _Scanner(text.lower())
    group = scan.run("abcdefghijklmnopqrstuvwxyz_")
    if not group:
        return None
    scan.spaces()
    first, last = scan.index_range()
    scan.spaces()
    sub_first = sub_last = None
    if scan.literal(":"):
        scan.spaces()
        sub_first, sub_last = scan.index_range()
        if sub_first is None:
            return None
    if scan.pos != len(scan.text):
        return None
    return LayerItem(text, group, first, last, sub_first, sub_last)


def parse_spec(spec: str, example: str) -> list[LayerItem]:
    """The items of a comma-separated layer spec, or ValueError quoting the first unreadable one."""
    if len(spec) > MAX_SPEC_CHARS:
        raise ValueError(f"the layer list is {len(spec)} characters long; the most is {MAX_SPEC_CHARS} (write "
                         f"ranges such as 'input 4-8' instead of listing every layer)")
    items = []
    for part in spec.split(","):
        text = part.strip()
        if not text:
            continue
        item = parse_item(text)
        if item is None:
            raise ValueError(f"cannot read layer {quoted(text)}; write e.g. '{example}'")
        items.append(item)
    return items
