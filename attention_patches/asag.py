"""ASAG's attention perturbation (arXiv 2511.07499) for the hook layer: the adversarial Sinkhorn transport plan."""
import torch

from ..core.asag import joint_sinkhorn_attention, sinkhorn_attention
from ..core.attention import additive_mask
from .attention_call import AttentionCall


def asag_perturbation(epsilon: float, iterations: int):
    """Self-attention map replaced by the Sinkhorn plan of cost S (the logits); on joint attention only the image-image
    part is replaced (image rows keep their text weights, text rows keep full attention)."""
    def perturb(call: AttentionCall) -> torch.Tensor:
        mask = additive_mask(call.mask, torch.float32)
        if call.joint and call.text_len > 0:
            return joint_sinkhorn_attention(call.q, call.k, call.v, call.scale, call.image, epsilon, iterations, mask)
        return sinkhorn_attention(call.q, call.k, call.v, call.scale, epsilon, iterations, mask)
    return perturb
