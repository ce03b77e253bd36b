"""Thin V3 nodes of Guidance Zoo."""
from comfy_api.latest import ComfyExtension, io

from .apg import APG
from .pag import PAG

NODES: list[type[io.ComfyNode]] = [APG, PAG]


class GuidanceZooExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return NODES
