"""Perp-Neg kernels (Armandpour et al., 2023, arXiv 2304.04968): negative prompts through their perpendicular part."""
import torch

from .reduce import per_sample_dot


def perpendicular(neg: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Perp-Neg (arXiv 2304.04968) neg - (<neg,pos> / ||pos||^2) pos per sample; where ||pos|| ~ 0, neg itself."""
    n, p = neg.float(), pos.float()
    norm2 = per_sample_dot(p, p)
    usable = norm2 > torch.finfo(torch.float32).tiny
    coeff = torch.where(usable, per_sample_dot(n, p) / torch.where(usable, norm2, torch.ones_like(norm2)),
                        torch.zeros_like(norm2))
    return (n - coeff * p).to(neg.dtype)


def perpneg_denoised(positive: torch.Tensor, negative: torch.Tensor, empty: torch.Tensor, cfg: float,
                     neg_scale: float) -> torch.Tensor:
    """Perp-Neg (arXiv 2304.04968) D = D_empty + cfg (pos - neg_scale perp(neg, pos)), pos/neg taken from D_empty."""
    e = empty.float()
    pos, neg = positive.float() - e, negative.float() - e
    return (e + cfg * (pos - neg_scale * perpendicular(neg, pos))).to(positive.dtype)
