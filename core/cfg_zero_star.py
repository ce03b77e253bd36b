"""CFG-Zero* kernels (Fan et al., arXiv 2503.18886)."""
import torch

from .reduce import per_sample_dot


def optimized_scale(cond_out: torch.Tensor, uncond_out: torch.Tensor) -> torch.Tensor:
    """CFG-Zero* (arXiv 2503.18886) alpha* = <c, u> / ||u||^2 per sample, in fp32, shaped to broadcast."""
    c, u = cond_out.float(), uncond_out.float()
    return per_sample_dot(c, u) / (per_sample_dot(u, u) + 1e-8)


def cfg_zero_star(cond_out: torch.Tensor, uncond_out: torch.Tensor, scale: float) -> torch.Tensor:
    """CFG-Zero* (arXiv 2503.18886): alpha* u + w (c - alpha* u), in the space the predictions are given in."""
    alpha = optimized_scale(cond_out, uncond_out).to(cond_out.dtype)
    return alpha * uncond_out + scale * (cond_out - alpha * uncond_out)
