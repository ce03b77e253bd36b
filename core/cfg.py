"""The CFG identity every combine rule builds on."""
import torch


def cond_for_linear_cfg(target: torch.Tensor, uncond: torch.Tensor, scale: float) -> torch.Tensor:
    """The cond prediction c' for which ComfyUI's linear CFG, uncond + w (c' - uncond), lands on target."""
    return uncond + (target - uncond) / scale
