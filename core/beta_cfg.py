"""beta-CFG kernels (Malarz et al., arXiv 2502.10574)."""
import math

import torch

from .reduce import per_sample_norm


def beta_pdf(p: float, a: float, b: float) -> float:
    """Density of Beta(a, b) at p in [0, 1] (scipy.stats.beta.pdf)."""
    if p <= 0.0 or p >= 1.0:
        edge = a if p <= 0.0 else b
        return 0.0 if edge > 1.0 else (1.0 / math.exp(math.lgamma(a) + math.lgamma(b) - math.lgamma(a + b))
                                        if edge == 1.0 else math.inf)
    log_norm = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
    return math.exp(log_norm + (a - 1.0) * math.log(p) + (b - 1.0) * math.log1p(-p))


def beta_cfg(cond_out: torch.Tensor, uncond_out: torch.Tensor, scale: float, progress: float, a: float, b: float,
             gamma: float) -> torch.Tensor:
    """beta-CFG (arXiv 2502.10574): u + w * Beta_pdf(progress; a, b) * (c - u) / ||c - u||^gamma, per sample."""
    delta = cond_out - uncond_out
    norm = per_sample_norm(delta.float()).clamp_min(1e-12) ** gamma
    return uncond_out + (scale * beta_pdf(progress, a, b)) * (delta.float() / norm).to(delta.dtype)
