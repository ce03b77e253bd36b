"""VSF (arXiv 2508.10931) for the negative-context hook: flipped negative values for the image tokens only."""
import torch

from ..core.vsf import vsf_cross_attention, vsf_joint_attention
from .tokens import heads_last
from .negative_call import JointRows


def vsf_cross_rule(scale: float, offset: float):
    """Cross-attention (Wan, UNet attn2): the positive rows attend to [K+, K-] with V- flipped and scaled."""
    def rule(q, k_pos, v_pos, k_neg, v_neg, z_pos):
        return heads_last(vsf_cross_attention(q, k_pos, v_pos, k_neg, v_neg, scale, offset))
    return rule


def vsf_joint_rule(scale: float, offset: float):
    """Joint attention (SD3): the positive rows' text is [P, N, N]; the official four mask rules, without a mask."""
    def rule(rows: JointRows, normal: torch.Tensor) -> torch.Tensor:
        text, n = rows.text, rows.negative_len
        prompt, negative = slice(text.start, text.stop - n), slice(text.stop - n, text.stop)
        pos = rows.positive
        out = normal.clone()
        out[pos] = heads_last(vsf_joint_attention(rows.q[pos], rows.k[pos], rows.v[pos], rows.image, prompt,
                                                  negative, scale, offset)).to(out.dtype)
        return out
    return rule
