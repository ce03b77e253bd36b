"""Skip-layer guidance kernels (Stability AI's SD3.5 SLG, as in ComfyUI's SkipLayerGuidanceDiT)."""
import torch


def rescale_to_cond_std(guided: torch.Tensor, cond: torch.Tensor, rescaling_scale: float) -> torch.Tensor:
    """SLG's optional rescale: guided * (r * std(cond) / std(guided) + 1 - r), std per sample over all other dims."""
    dims = tuple(range(1, guided.ndim))
    factor = cond.std(dim=dims, keepdim=True) / guided.std(dim=dims, keepdim=True)
    return guided * (rescaling_scale * factor + (1 - rescaling_scale))
