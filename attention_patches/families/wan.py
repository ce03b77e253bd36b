"""Wan 2.x: self-attention over the video tokens, then a cross-attention to the embedded text (image-to-video
blocks first attend to the image embedding) in each block."""
from __future__ import annotations

import torch

from .base import BlockStack, TextEntry


class Wan(BlockStack):
    name = "wan"
    label = "Wan 2.1"
    config_classes = ("WAN21_T2V", "WAN21_I2V", "WAN21_FunControl2V", "WAN21_Vace", "WAN21_Camera", "WAN22_T2V")
    text_entry = TextEntry.BLOCK_CROSS_ATTENTION
    time_embeddings = ("time_embedding",)
    refused = frozenset({"S-CFG", "SAG"})

    def matches(self, diffusion_model) -> bool:
        return type(diffusion_model).__name__.endswith("WanModel") and super().matches(diffusion_model)

    def cross_call_index(self, block: torch.nn.Module) -> int:
        return 2 if type(block.cross_attn).__name__ == "WanI2VCrossAttention" else 1

    def embed_text(self, diffusion_model, tokens: torch.Tensor) -> torch.Tensor:
        return diffusion_model.text_embedding(tokens)


WAN = Wan()
