"""Qwen-Image: dual-stream transformer blocks with joint attention, text first."""
from __future__ import annotations

from .base import BlockStack


class QwenImage(BlockStack):
    name = "qwen"
    label = "Qwen-Image"
    config_classes = ("QwenImage",)
    blocks_attribute = "transformer_blocks"
    joint = True
    time_embeddings = ("time_text_embed.timestep_embedder",)
    refused = frozenset({"S-CFG", "VSF", "SAG"})

    def matches(self, diffusion_model) -> bool:
        return type(diffusion_model).__name__.startswith("QwenImage") and super().matches(diffusion_model)


QWEN_IMAGE = QwenImage()
