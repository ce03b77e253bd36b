"""Dynamic thresholding (Saharia et al., Imagen, arXiv 2205.11487) with a latent-space reference range."""
import torch


def percentile_range(x: torch.Tensor, percentile: float) -> torch.Tensor:
    """Per sample and channel: the percentile of |x - mean| over the remaining dims (frames included)."""
    flat = x.float().reshape(x.shape[0], x.shape[1], -1)
    centred = flat - flat.mean(dim=-1, keepdim=True)
    return torch.quantile(centred.abs(), percentile, dim=-1, keepdim=True)


def dynamic_threshold(denoised: torch.Tensor, reference_range: torch.Tensor, percentile: float) -> torch.Tensor:
    """Imagen's rule (arXiv 2205.11487) with [-1, 1] replaced by a per-channel reference range.

    s = max(percentile(|D - mean|), range); D = mean + clamp(D - mean, -s, s) * range / s. With range 1 and zero
    means this is Imagen's clamp(D, -s, s) / s up to the centring.
    """
    flat = denoised.float().reshape(denoised.shape[0], denoised.shape[1], -1)
    mean = flat.mean(dim=-1, keepdim=True)
    centred = flat - mean
    s = torch.maximum(torch.quantile(centred.abs(), percentile, dim=-1, keepdim=True), reference_range)
    out = mean + centred.clamp(-s, s) * (reference_range / s)
    return out.reshape(denoised.shape).to(denoised.dtype)
