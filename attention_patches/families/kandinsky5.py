"""Kandinsky 5 (image and video): text blocks refine the embedded prompt once per forward, then each visual block
runs self-attention over the image/video tokens and a cross-attention to that refined text. ComfyUI's "dit" block
replace calls the block with argument names it does not take, so its blocks are reached by forward hooks and its
attention calls are counted per forward: the text blocks' calls, then (self, cross) per visual block."""
from __future__ import annotations

import torch

from ..layers import Layer, LayerMap
from .base import AttentionReach, BlockReach, BlockStack, TextEntry


class Kandinsky5(BlockStack):
    name = "kandinsky5"
    label = "Kandinsky 5"
    config_classes = ("Kandinsky5", "Kandinsky5Image")
    blocks_attribute = "visual_transformer_blocks"
    attention_reach = AttentionReach.CALL_COUNT
    block_reach = BlockReach.FORWARD_HOOKS
    text_entry = TextEntry.BLOCK_CROSS_ATTENTION
    time_embeddings = ("time_embeddings",)
    refused = frozenset({"S-CFG", "SAG"})

    def matches(self, diffusion_model) -> bool:
        return (type(diffusion_model).__name__ == "Kandinsky5" and hasattr(diffusion_model, "text_transformer_blocks")
                and super().matches(diffusion_model))

    def refiner_calls(self, diffusion_model) -> int:
        return len(diffusion_model.text_transformer_blocks)

    def counted_layer(self, index: int, lmap: LayerMap) -> Layer:
        """Self-attention calls are the blocks' layers; a cross-attention or text-block call is no layer's."""
        call = index - lmap.refiner_calls
        return Layer("block", call // 2) if call >= 0 and call % 2 == 0 else Layer("text", index)

    def counted_cross_layer(self, index: int, lmap: LayerMap) -> Layer | None:
        call = index - lmap.refiner_calls
        return Layer("block", call // 2) if call >= 0 and call % 2 == 1 else None

    def token_lengths(self, diffusion_model, args: tuple, kwargs: dict) -> tuple[int, None]:
        return 0, None

    def block_modules(self, diffusion_model) -> dict[Layer, torch.nn.Module]:
        return dict(zip(self.layers(diffusion_model), diffusion_model.visual_transformer_blocks))

    def cross_call_index(self, block: torch.nn.Module) -> int:
        return 1

    def context_module(self, diffusion_model) -> torch.nn.Module:
        blocks = diffusion_model.text_transformer_blocks
        return blocks[-1] if len(blocks) else diffusion_model.text_embeddings

    def embed_block_text(self, diffusion_model, tokens: torch.Tensor, block_args: dict) -> torch.Tensor:
        """The model's text embedding and text blocks, modulated by the time-step embedding the last text block got
        (each row's time step plus its pooled prompt). The blocks' forward is called directly: no hook and no
        attention patch takes these calls for the prompt's."""
        context = diffusion_model.text_embeddings(tokens)
        blocks = diffusion_model.text_transformer_blocks
        if not len(blocks):
            return context
        time_embed = block_args["args"][1]
        freqs = diffusion_model.rope_encode_1d(context.shape[1], device=context.device, dtype=context.dtype)
        for block in blocks:
            context = block.forward(context, time_embed, freqs, transformer_options={})
        return context


KANDINSKY5 = Kandinsky5()
