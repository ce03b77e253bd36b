"""HunyuanDiT: one stack of blocks (the later ones also take a long skip from an earlier one), each self-attention
over the image tokens, a cross-attention to the CLIP + mT5 text, then an MLP. Its blocks are "dit" double_block
replace patches whose args carry no transformer_options, its forward runs no DIFFUSION_MODEL wrappers and its
attention calls get no transformer_options: the attention methods refuse, and the block methods find the batch rows
of their cond through an APPLY_MODEL wrapper that keeps the call's transformer_options."""
from __future__ import annotations

from .base import BlockStack, TextEntry
from .pixart import ATTENTION_METHODS, unreachable


class HunyuanDiT(BlockStack):
    name = "hunyuan_dit"
    label = "HunyuanDiT"
    config_classes = ("HunyuanDiT", "HunyuanDiT1")
    forward_wrapper = "apply_model"
    text_entry = TextEntry.BLOCK_CROSS_ATTENTION
    time_embeddings = ("t_embedder",)
    refused = ATTENTION_METHODS
    refusal_reasons = unreachable("HunyuanDiT")

    def matches(self, diffusion_model) -> bool:
        return type(diffusion_model).__name__ == "HunYuanDiT" and super().matches(diffusion_model)


HUNYUAN_DIT = HunyuanDiT()
