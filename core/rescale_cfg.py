"""Rescale CFG kernel (Lin et al., WACV 2024, arXiv 2305.08891, section 3.4)."""
import torch

from .reduce import sample_dims


def rescale_cfg(cond: torch.Tensor, guided: torch.Tensor, multiplier: float) -> torch.Tensor:
    """Rescale CFG (arXiv 2305.08891): phi * guided * std(cond)/std(guided) + (1 - phi) * guided, per sample."""
    dims = sample_dims(guided)
    ratio = cond.float().std(dim=dims, keepdim=True) / guided.float().std(dim=dims, keepdim=True).clamp_min(1e-12)
    rescaled = guided * ratio.to(guided.dtype)
    return multiplier * rescaled + (1.0 - multiplier) * guided
