"""SD3 / SD3.5 (MMDiT): joint blocks with text and image tokens in one attention call, text first."""
from __future__ import annotations

from .base import BlockStack


class MMDiT(BlockStack):
    name = "mmdit"
    label = "SD3, SD3.5"
    config_classes = ("SD3",)
    blocks_attribute = "joint_blocks"
    joint = True
    time_embeddings = ("t_embedder",)
    refused = frozenset({"S-CFG", "SAG"})


MMDIT = MMDiT()
