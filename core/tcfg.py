"""Tangential Damping CFG kernel (arXiv 2503.18137)."""
import torch


def tangential_damping(cond_score: torch.Tensor, uncond_score: torch.Tensor) -> torch.Tensor:
    """TCFG (arXiv 2503.18137): the uncond score projected on the top right-singular vector of [uncond; cond]."""
    b = cond_score.shape[0]
    stacked = torch.stack((uncond_score.reshape(b, -1), cond_score.reshape(b, -1)), dim=1).float()
    _, _, vh = torch.linalg.svd(stacked, full_matrices=False)
    top = vh[:, :1, :]
    damped = (stacked[:, :1, :] @ top.transpose(-2, -1)) * top
    return damped.reshape(uncond_score.shape).to(uncond_score.dtype)
