"""Autoguidance kernel (Karras et al., NeurIPS 2024, arXiv 2406.02507)."""
import torch


def autoguidance(denoised: torch.Tensor, main_cond: torch.Tensor, weak_cond: torch.Tensor,
                 scale: float) -> torch.Tensor:
    """Autoguidance (arXiv 2406.02507) added to a prediction: D + (w - 1) (D_main(c) - D_weak(c)).

    On D = D_main(c) this is the paper's D_weak(c) + w (D_main(c) - D_weak(c)).
    """
    return denoised + (scale - 1.0) * (main_cond - weak_cond)
