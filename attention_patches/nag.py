"""NAG (arXiv 2505.21179) for the negative-context hook: extrapolate the image tokens' attention output away from the
negative context's, clamp the per-token L1 norm ratio, blend with the positive output."""
import torch

from ..core.nag import nag_blend
from .tokens import heads_last
from .negative_call import JointRows, attend


def nag_cross_rule(scale: float, tau: float, alpha: float):
    """Cross-attention (UNet attn2, Wan): Z- = Attn(Q, K-, V-), then NAG on the positive output."""
    def rule(q, k_pos, v_pos, k_neg, v_neg, z_pos):
        return nag_blend(z_pos, heads_last(attend(q, k_neg, v_neg)), scale, tau, alpha)
    return rule


def nag_joint_rule(scale: float, tau: float, alpha: float):
    """Joint attention: Z- from the image queries over [their image tokens, the negative text]; the same call gives
    the negative text stream's own attention (text queries over [negative text, positive image])."""
    def rule(rows: JointRows, normal: torch.Tensor) -> torch.Tensor:
        pos, neg, text, image = rows.positive, rows.negative_of, rows.text, rows.image
        q, k, v = rows.q[pos].clone(), rows.k[pos].clone(), rows.v[pos].clone()
        for mine, theirs in ((q, rows.q), (k, rows.k), (v, rows.v)):
            mine[:, :, text] = theirs[neg][:, :, text]
        z_neg = heads_last(attend(q, k, v, rows.mask)).to(normal.dtype)
        guided = nag_blend(normal[pos][:, image], z_neg[:, image], scale, tau, alpha)
        out = normal.clone()
        out[pos, image] = guided
        for i, (negative_row, own) in enumerate(zip(neg, rows.anchor)):
            if own:
                out[negative_row, text] = z_neg[i, text]
                out[negative_row, image] = guided[i]
        return out
    return rule
