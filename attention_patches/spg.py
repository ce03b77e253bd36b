"""SPG's (arXiv 2508.11476) style K/V injection for the hook layer, on every family.

One model call carries two extra conds: the style reference (the noised style latent with the negative prompt) and
the style branch (the generation with the negative prompt). In the chosen self/joint attention layers the branch's
rows attend to the reference rows' keys and values instead of their own. When ComfyUI runs both in one call the K/V
come from the same call; if it splits the call, the reference chunk (given the higher cond index, which ComfyUI runs
first) leaves its K/V in the pass state for the branch chunk. Every other row, and every row of other layers, gets its
normal attention through whatever was installed before.
"""
from __future__ import annotations

import torch

from ..core.attention import additive_mask
from ..core.attention import chunked_attention
from .attention_call import RawAttention
from .hook import PerturbedPass
from .pass_state import PassState
from .tokens import chunk_rows, from_heads_first, heads_first, mask_rows
from .layers import Layer
from .per_thread import PerThread


class StyleState(PassState):
    """A pass state with the reference chunk's index and the K/V it left per layer."""
    kv = PerThread(factory=dict)          # layer -> the reference rows' (k, v), per forward

    def __init__(self, targets: set[Layer], chunk: int, ref_chunk: int):
        super().__init__(targets, chunk)
        self.ref_chunk = ref_chunk


class StyleKVInjection(PerturbedPass):
    """A PerturbedPass whose chosen layers hand the reference rows' K/V to the style branch's rows."""

    def new_state(self, chunk: int | None = None, ref_chunk: int | None = None) -> StyleState:
        return StyleState(set(self.layers), chunk, ref_chunk)

    def layer_call(self, state: StyleState, layer: Layer, raw: RawAttention, normal):
        q, k, v = raw.q, raw.k, raw.v
        ref = chunk_rows(raw.cond_or_uncond, state.ref_chunk, q.shape[0])
        branch = chunk_rows(raw.cond_or_uncond, state.chunk, q.shape[0])
        out = normal()
        if branch is None:
            if ref is not None:
                state.kv[layer] = (k[ref], v[ref])
            return out
        if ref is not None:
            k_ref, v_ref = k[ref], v[ref]
        elif layer in state.kv:
            k_ref, v_ref = state.kv.pop(layer)
        else:
            raise RuntimeError(f"{self.owner}: the style reference's keys and values did not reach layer "
                               f"{layer.name} before the style branch")
        q_b, k_s, v_s = heads_first(raw.heads, raw.canonical, q[branch], k_ref, v_ref)
        mask = mask_rows(raw.mask, branch, q.shape[0])
        attended = chunked_attention(q_b.float(), k_s.float(), v_s.float(),
                                     raw.scale if raw.scale is not None else q_b.shape[-1] ** -0.5,
                                     additive_mask(mask, torch.float32))
        state.hits += 1
        out[branch] = from_heads_first(attended, raw.keep_canonical).to(out.dtype)
        return out
