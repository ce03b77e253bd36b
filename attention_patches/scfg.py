"""S-CFG's (arXiv 2404.05384) attention-map capture for the hook layer: UNet attn1/attn2 replace patches that leave
every output unchanged and, for the positive prompt's rows, keep what S-CFG needs of the layer's attention.

attn1 keeps the self-attention q, k of those rows (linear in tokens); attn2 of the same transformer block then forms
the head-averaged cross-attention probabilities and their SSGC smoothing S @ CA chunkwise (core/scfg.py), so no
N x N self-attention map is ever held. Patches are installed per model call and chain whatever attn1/attn2 replace
was there (another pack's), which still computes the layer's output.
"""
from __future__ import annotations

import torch

import comfy.model_patcher

from ..core.scfg import cross_attention_probs, ssgc_cross_attention
from .hook import chain_replace, plain_attention
from .tokens import chunk_rows, heads_first, token_grid
from .layers import Layer, LayerMap


class CapturedMaps:
    """What one model call captured: per layer, the smoothed cross-attention maps (B, T, h, w) of the cond rows."""

    def __init__(self):
        self.pending: dict[Layer, tuple[torch.Tensor, torch.Tensor, float]] = {}
        self.maps: dict[Layer, torch.Tensor] = {}


class AttentionMapCapture:
    """Installs the capture patches on chosen UNet layers for one model call."""

    def __init__(self, lmap: LayerMap, layers: list[Layer], chunk_size: int = 512):
        self.lmap, self.layers, self.chunk_size = lmap, layers, chunk_size

    def options(self, model_options: dict, captured: CapturedMaps) -> dict:
        options = comfy.model_patcher.create_model_options_clone(model_options)
        transformer_options = options.setdefault("transformer_options", {})
        for layer in self.layers:
            key = self.lmap.patch_key(layer)
            chain_replace(transformer_options, "attn1", key, self._self_attention, layer, captured)
            chain_replace(transformer_options, "attn2", key, self._cross_attention, layer, captured)
        return options

    @staticmethod
    def _rows(extra_options: dict, batch: int) -> slice | None:
        return chunk_rows(extra_options.get("cond_or_uncond"), 0, batch)

    def _self_attention(self, layer: Layer, captured: CapturedMaps, previous):
        def replace(q, k, v, extra_options):
            out = (previous or plain_attention)(q, k, v, extra_options)
            rows = self._rows(extra_options, q.shape[0])
            if rows is not None:
                q1, k1 = heads_first(extra_options["n_heads"], False, q[rows], k[rows])
                captured.pending[layer] = (q1, k1, q1.shape[-1] ** -0.5)
            return out
        return replace

    def _cross_attention(self, layer: Layer, captured: CapturedMaps, previous):
        def replace(q, k, v, extra_options):
            out = (previous or plain_attention)(q, k, v, extra_options)
            rows = self._rows(extra_options, q.shape[0])
            pending = captured.pending.pop(layer, None)
            grid = token_grid(extra_options, q.shape[1])
            if rows is None or pending is None or grid is None:
                return out
            q2, k2 = heads_first(extra_options["n_heads"], False, q[rows], k[rows])
            cross = cross_attention_probs(q2, k2, q2.shape[-1] ** -0.5, self.chunk_size)
            q1, k1, scale = pending
            smoothed = ssgc_cross_attention(q1, k1, scale, cross, chunk=self.chunk_size)
            b, n, t = smoothed.shape
            captured.maps[layer] = smoothed.transpose(1, 2).reshape(b, t, *grid)
            return out
        return replace


def downsample_factors(model_patcher, lmap: LayerMap) -> dict[Layer, int]:
    """Each UNet attention layer's downsample factor relative to the latent (1, 2, 4, 8, ...)."""
    dm = model_patcher.model.diffusion_model
    levels: dict[tuple[str, int], int] = {}
    level = 0
    for i, block in enumerate(dm.input_blocks):
        level += sum(type(m).__name__ == "Downsample" for m in block)
        levels[("input", i)] = level
    levels[("middle", 0)] = level
    for i, block in enumerate(dm.output_blocks):
        levels[("output", i)] = level
        level -= sum(type(m).__name__ == "Upsample" for m in block)
    return {layer: 2 ** levels[(layer.group, layer.index)] for layer in lmap.layers}


def paper_layers(model_patcher, lmap: LayerMap, factors=(4, 8)) -> list[Layer]:
    """S-CFG's (arXiv 2404.05384) maps: every attention layer at 1/4 and 1/8 of the latent size (16x16 and 8x8 on
    SD1.5 at 512 px; on SDXL, which has no 1/8 attention, the 1/4 layers). A model without such layers (a small
    one) uses its coarsest attention level instead."""
    by_factor = downsample_factors(model_patcher, lmap)
    chosen = [layer for layer in lmap.layers if by_factor[layer] in factors]
    if not chosen:
        coarsest = max(by_factor.values())
        chosen = [layer for layer in lmap.layers if by_factor[layer] == coarsest]
    return chosen
