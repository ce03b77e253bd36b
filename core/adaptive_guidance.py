"""Adaptive Guidance kernel (Castillo et al., arXiv 2312.12487)."""
import torch

from .reduce import per_sample_dot


def guidance_cosine(cond_out: torch.Tensor, uncond_out: torch.Tensor) -> torch.Tensor:
    """Adaptive Guidance (arXiv 2312.12487): cosine similarity of the cond and uncond predictions, per sample [B]."""
    c, u = cond_out.float(), uncond_out.float()
    denom = (per_sample_dot(c, c) * per_sample_dot(u, u)).sqrt().clamp_min(1e-20)
    return (per_sample_dot(c, u) / denom).flatten().clamp(-1.0, 1.0)
