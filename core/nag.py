"""Normalized Attention Guidance kernels (Chen et al., arXiv 2505.21179)."""
import torch


def nag_blend(z_pos: torch.Tensor, z_neg: torch.Tensor, scale: float, tau: float, alpha: float,
              eps: float = 1e-6) -> torch.Tensor:
    """NAG (arXiv 2505.21179): extrapolate attention outputs, clamp the per-token L1 norm ratio at tau, blend.

    z_pos, z_neg: (..., tokens, channels) attention outputs for the positive and the negative context; the norms are
    taken per token over the channels (all heads together). Computed in fp32, returned in z_pos's dtype.
    """
    pos, neg = z_pos.float(), z_neg.float()
    guided = scale * pos - (scale - 1.0) * neg
    norm_pos = pos.norm(p=1, dim=-1, keepdim=True).clamp_min(eps)
    norm_guided = guided.norm(p=1, dim=-1, keepdim=True).clamp_min(eps)
    ratio = norm_guided / norm_pos
    guided = guided * (ratio.clamp_max(tau) / ratio)
    return (alpha * guided + (1.0 - alpha) * pos).to(z_pos.dtype)
