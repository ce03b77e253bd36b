"""SEG's attention perturbation (arXiv 2408.00760) for the hook layer: blurred image-token queries."""
import torch

from ..core.attention import additive_mask
from ..core.seg import seg_attention
from .attention_call import AttentionCall


def seg_perturbation(blur_sigma: float):
    """A perturbation blurring the image tokens' queries with a Gaussian of blur_sigma (>= 9999: infinite)."""
    def perturb(call: AttentionCall) -> torch.Tensor:
        return seg_attention(call.q, call.k, call.v, call.scale, blur_sigma, call.image, call.grid,
                             additive_mask(call.mask, torch.float32))
    return perturb
