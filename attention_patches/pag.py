"""PAG's attention perturbation (arXiv 2403.17377) for the hook layer: identity self-attention, joint-aware on DiTs."""
import torch

from ..core.pag import identity_self_attention, joint_identity_attention
from .attention_call import AttentionCall


def pag_perturbation(call: AttentionCall) -> torch.Tensor:
    """Identity attention map: each image token returns its own value (and still sees text on joint attention)."""
    if call.joint and call.text_len > 0:
        return joint_identity_attention(call.q, call.k, call.v, call.text_len, call.text_first, call.scale, call.mask)
    return identity_self_attention(call.v)
