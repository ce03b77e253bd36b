"""PLADIS's cross-attention (arXiv 2503.07677) for the hook layer: sparse/dense attention extrapolation."""
import torch

from ..core.pladis import joint_pladis_attention, pladis_attention
from .cross_attention import CrossAttention, CrossAttentionCall


def pladis_cross_attention(lam: float, alpha: float) -> CrossAttention:
    """(lam * entmax_alpha(S) + (1 - lam) * softmax(S)) V; on joint attention the same on the image rows' text-key
    part (text share kept). On top of an attention installed before, its output plus PLADIS's change to plain
    attention, so that patch's own additions (e.g. IPAdapter's image tokens) are kept."""
    def attention(call: CrossAttentionCall, change_only: bool) -> torch.Tensor:
        if call.text is None:
            return pladis_attention(call.q, call.k, call.v, call.scale, lam, alpha, call.mask, change_only)
        return joint_pladis_attention(call.q, call.k, call.v, call.scale, lam, alpha, call.text, call.mask,
                                      change_only)

    def replace(call: CrossAttentionCall) -> torch.Tensor:
        if call.installed is None:
            return attention(call, False)
        before = call.installed()
        return (before.float() + attention(call, True).float()).to(before.dtype)
    return replace
