"""ICG kernel ("No Training, No Problem", Sadat et al., ICLR 2025, arXiv 2407.02687)."""
import torch

from .reduce import sample_dims


def independent_condition(real: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """ICG (arXiv 2407.02687): a Gaussian condition with each sample's mean and std of the real one, mean + std * n.

    real and noise have the same shape [B, ...]; statistics are taken per sample over all non-batch dims, in fp32."""
    r = real.float()
    dims = sample_dims(r)
    mean = r.mean(dim=dims, keepdim=True)
    std = r.std(dim=dims, keepdim=True) if r[0].numel() > 1 else torch.ones_like(mean)
    return (mean + std * noise.float()).to(real.dtype)
