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


EDGE = 0.02


def guidance_weight(p: float, a: float, b: float) -> float:
    """beta-CFG's time weight: the Beta(a, b) density, with p kept EDGE away from an end where the density is
    unbounded (a < 1 at 0, b < 1 at 1), so every a, b > 0 gives a finite weight."""
    if a < 1.0:
        p = max(p, EDGE)
    if b < 1.0:
        p = min(p, 1.0 - EDGE)
    return beta_pdf(p, a, b)


def beta_cfg(cond_out: torch.Tensor, uncond_out: torch.Tensor, scale: float, progress: float, a: float, b: float,
             gamma: float) -> torch.Tensor:
    """beta-CFG (arXiv 2502.10574): u + w * Beta_pdf(progress; a, b) * (c - u) / ||c - u||^gamma, per sample
    (the density kept finite at unbounded ends, see guidance_weight)."""
    delta = cond_out - uncond_out
    norm = per_sample_norm(delta.float()).clamp_min(1e-12) ** gamma
    return uncond_out + (scale * guidance_weight(progress, a, b)) * (delta.float() / norm).to(delta.dtype)
