"""What the README's methods table and the benchmark scripts say of a method, kept once beside its node (no ComfyUI
import): each method module's METHOD_INFO, collected in README order by nodes/methods.py."""
import re
from dataclasses import dataclass

ARXIV = re.compile(r"arXiv (\d{4}\.\d{4,5})")


def escape(text: str) -> str:
    """Text as literal markdown (an asterisk is not emphasis)."""
    return text.replace("*", "\\*")


@dataclass(frozen=True)
class Node:
    """One node of a method as the README names it: its id without the prefix, its label (the method's name when
    empty; bold unless bold is False) and a tag after the id such as 'GUIDER'."""
    id: str
    label: str = ""
    tag: str = ""
    bold: bool = True

    def cell(self, name: str) -> str:
        label = escape(self.label or name)
        return (f"**{label}**" if self.bold else label) + f" `{self.id}`" + (f" ({self.tag})" if self.tag else "")


@dataclass(frozen=True)
class MethodInfo:
    """A method's display name, nodes, paper and cost, as the README table states them, and its names and claim in
    the benchmark tables (short: the row name of scripts/bench_tiny.py when not name; claim: the paper's claim in
    docs/benchmark.md, after claim_label or '<name> (arXiv <id>)')."""
    name: str
    nodes: tuple[Node, ...]
    paper: str
    fixes: str
    evaluations: str
    models: str
    at_cfg_1: str
    short: str = ""
    claim: str = ""
    claim_label: str = ""

    @property
    def arxiv(self) -> str | None:
        """The arXiv id of the (first) paper, None when the paper cell names none."""
        match = ARXIV.search(self.paper)
        return match.group(1) if match else None

    @property
    def bench_name(self) -> str:
        return self.short or self.name

    @property
    def claim_text(self) -> str:
        """The paper's claim as the digits benchmark states it, '' when it states none."""
        if not self.claim:
            return ""
        return f"{self.claim_label or f'{self.name} (arXiv {self.arxiv})'}: {self.claim}"

    def node_ids(self, prefix: str = "") -> tuple[str, ...]:
        return tuple(prefix + node.id for node in self.nodes)

    def row(self) -> str:
        """The method's row of the README's methods table."""
        cells = (", ".join(node.cell(self.name) for node in self.nodes), self.paper, self.fixes, self.evaluations,
                 self.models, self.at_cfg_1)
        return "| " + " | ".join(cells) + " |"
