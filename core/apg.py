"""Adaptive Projected Guidance kernels (Sadat, Hilliges, Weber, ICLR 2025, arXiv 2410.02416)."""
import torch

from .reduce import per_sample_dot, per_sample_norm


def apg_momentum(guidance: torch.Tensor, running: torch.Tensor | None, momentum: float) -> torch.Tensor:
    """APG (arXiv 2410.02416) Alg. 1 momentum: M <- G + beta * M, with M = 0 before the first step."""
    if momentum == 0 or running is None:
        return guidance
    return guidance + momentum * running


def apg_rescale(guidance: torch.Tensor, norm_threshold: float) -> torch.Tensor:
    """APG (arXiv 2410.02416) norm rescaling: G * min(1, r / ||G||) per sample; r <= 0 disables it."""
    if norm_threshold <= 0:
        return guidance
    norm = per_sample_norm(guidance.float())
    factor = torch.clamp(norm_threshold / norm.clamp_min(torch.finfo(torch.float32).tiny), max=1.0)
    return guidance * factor.to(guidance.dtype)


def apg_project(guidance: torch.Tensor, cond: torch.Tensor, eta: float) -> torch.Tensor:
    """APG (arXiv 2410.02416) projection: G_perp + eta * G_par, parallel part taken along the cond prediction."""
    g = guidance.double()
    c = cond.double()
    unit = c / per_sample_norm(c).clamp_min(1e-30)
    parallel = per_sample_dot(g, unit) * unit
    return ((g - parallel) + eta * parallel).to(guidance.dtype)


def apg_guidance(cond: torch.Tensor, uncond: torch.Tensor, eta: float, norm_threshold: float,
                 momentum: float, running: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
    """APG (arXiv 2410.02416) Alg. 1 update direction G' and the new momentum buffer, in denoised space."""
    averaged = apg_momentum(cond - uncond, running, momentum)
    return apg_project(apg_rescale(averaged, norm_threshold), cond, eta), averaged


def apg_denoised(cond: torch.Tensor, guidance: torch.Tensor, scale: float) -> torch.Tensor:
    """APG (arXiv 2410.02416) Alg. 1 output: D = D_c + (w - 1) * G'."""
    return cond + (scale - 1.0) * guidance
