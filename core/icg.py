"""ICG kernel ("No Training, No Problem", Sadat et al., ICLR 2025, arXiv 2407.02687)."""
import torch

from .reduce import sample_dims


def independent_condition(real: torch.Tensor, noise: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
    """ICG (arXiv 2407.02687): a Gaussian condition with each sample's mean and std of the real one, mean + std * n.

    real and noise have the same shape [B, ...]; statistics are taken per sample over all non-batch dims, in fp32.
    valid: an optional [B, tokens] mask of real (B, tokens, C) tokens; the others (a model's zero padding) count
    nowhere and stay as they are."""
    r = real.float()
    if valid is None:
        dims = sample_dims(r)
        mean = r.mean(dim=dims, keepdim=True)
        std = r.std(dim=dims, keepdim=True) if r[0].numel() > 1 else torch.ones_like(mean)
        return (mean + std * noise.float()).to(real.dtype)
    weight = valid.to(r.dtype).unsqueeze(-1).expand_as(r)
    count = weight.sum(dim=(1, 2), keepdim=True)
    mean = (r * weight).sum(dim=(1, 2), keepdim=True) / count
    std = (((r - mean) ** 2 * weight).sum(dim=(1, 2), keepdim=True) / (count - 1).clamp(min=1)).sqrt()
    return torch.where(weight > 0, mean + std * noise.float(), r).to(real.dtype)
