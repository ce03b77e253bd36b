"""SAG's (arXiv 2210.00939) attention capture for the hook layer: an attn1 replace patch on one UNet layer that leaves
the layer's output as it is and keeps, for the batch rows of one cond, the attention each token receives.

The patch is installed in the model_options of one model call only and chains whatever attn1 replace was there
(another pack's), which still computes the output. Every batch chunk of the chosen cond is kept: ComfyUI may run a
cond in several pieces (area or combined conditioning) and split conds over several model calls.
"""
from __future__ import annotations

import torch

import comfy.model_patcher

from ..core.sag import attention_received, salient_mask
from .hook import chain_replace, plain_attention
from .layers import Layer, LayerMap
from .tokens import heads_first, token_grid


class ReceivedAttention:
    """What one capture saw: the attention received per token (B, N) of each batch chunk of the chosen cond, with the
    (h, w) grid of its tokens."""

    def __init__(self):
        self.parts: list[tuple[torch.Tensor, tuple[int, int] | None]] = []

    def add(self, received: torch.Tensor, grid: tuple[int, int] | None) -> None:
        self.parts.append((received, grid))

    def mask(self, size: tuple[int, int], owner: str) -> torch.Tensor:
        """SAG's salient mask (B, 1, H, W) on a latent of (H, W); the chunks with the most tokens (the whole latent,
        not an area) are averaged."""
        if not self.parts:
            raise RuntimeError(f"{owner}: no self-attention map was captured at its layer in this step's model call")
        tokens = max(received.shape[1] for received, _ in self.parts)
        full = [(received, grid) for received, grid in self.parts if received.shape[1] == tokens]
        grid = full[0][1]
        if grid is None:
            raise RuntimeError(f"{owner}: the attention layer did not tell its token grid, so the attention map "
                               "cannot be placed on the latent")
        return salient_mask(torch.stack([received for received, _ in full]).mean(0), grid, size)


def _capture(chunk: int, received: ReceivedAttention, previous):
    def replace(q, k, v, extra_options):
        out = (previous or plain_attention)(q, k, v, extra_options)
        chunks = list(extra_options.get("cond_or_uncond") or [])
        per = q.shape[0] // max(len(chunks), 1)
        for position, index in enumerate(chunks):
            if index == chunk:
                rows = slice(position * per, (position + 1) * per)
                q1, k1 = heads_first(extra_options["n_heads"], False, q[rows], k[rows])
                received.add(attention_received(q1, k1, q1.shape[-1] ** -0.5), token_grid(extra_options, q.shape[1]))
        return out
    return replace


def capture_options(model_options: dict, lmap: LayerMap, layer: Layer, chunk: int,
                    received: ReceivedAttention) -> dict:
    """A clone of model_options whose model call records, into received, the attention that layer's tokens receive
    in the rows of cond index chunk (0 positive, 1 negative)."""
    options = comfy.model_patcher.create_model_options_clone(model_options)
    transformer_options = options.setdefault("transformer_options", {})
    chain_replace(transformer_options, "attn1", lmap.patch_key(layer), _capture, chunk, received)
    return options
