"""PLADIS's cross-attention (arXiv 2503.07677) for the hook layer: sparse/dense attention extrapolation."""
import torch

from ..core.pladis import pladis_attention
from .cross_attention import CrossAttention, CrossAttentionCall


def pladis_cross_attention(lam: float, alpha: float) -> CrossAttention:
    """(lam * entmax_alpha(S) + (1 - lam) * softmax(S)) V; on top of an attention installed before, its output plus
    lam * (entmax_alpha(S) - softmax(S)) V, so that patch's own additions (e.g. IPAdapter's image tokens) are kept."""
    def replace(call: CrossAttentionCall) -> torch.Tensor:
        if call.installed is None:
            return pladis_attention(call.q, call.k, call.v, call.scale, lam, alpha, call.mask)
        before = call.installed()
        change = pladis_attention(call.q, call.k, call.v, call.scale, lam, alpha, call.mask, residual_only=True)
        return (before.float() + change.float()).to(before.dtype)
    return replace
