"""Reinforcement Learning Guidance kernel (Jin et al., arXiv 2508.21016)."""
import torch


def rlg_combine(base_guided: torch.Tensor, tuned_guided: torch.Tensor, weight: float) -> torch.Tensor:
    """RLG (arXiv 2508.21016): v_base^cfg + w (v_rl^cfg - v_base^cfg); w = 0 base, 1 RL model, > 1 extrapolates."""
    return base_guided + weight * (tuned_guided - base_guided)
