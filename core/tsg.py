"""TSG kernel ("No Training, No Problem", Sadat et al., ICLR 2025, arXiv 2407.02687)."""
import torch

from .reduce import sample_dims


def perturbed_time_embedding(embedding: torch.Tensor, noise: torch.Tensor, t: float, scale: float,
                             alpha: float) -> torch.Tensor:
    """TSG (arXiv 2407.02687, App. G power schedule): e + s * t^alpha * std(e) * n, std per sample, t in [0, 1]."""
    e = embedding.float()
    std = e.std(dim=sample_dims(e), keepdim=True) if e[0].numel() > 1 else torch.zeros_like(e)
    return (e + scale * (t ** alpha) * std * noise.float()).to(embedding.dtype)
