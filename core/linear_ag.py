"""LinearAG kernels (Castillo et al., "Adaptive Guidance", arXiv 2312.12487): least-squares linear uncond estimates."""
import torch

from .reduce import per_sample_dot


def normal_equations(regressors: list[torch.Tensor], target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """LinearAG (arXiv 2312.12487): per-sample normal equations (P^T P [B,K,K], P^T y [B,K]) over all non-batch
    dims, in fp64, for fitting target ~ sum_k beta_k P_k; sums of these over steps give the joint fit."""
    p = [r.double() for r in regressors]
    y = target.double()
    k, b = len(p), y.shape[0]
    gram = torch.stack([torch.stack([per_sample_dot(p[i], p[j]).reshape(b) for j in range(k)], -1)
                        for i in range(k)], -2)
    rhs = torch.stack([per_sample_dot(p[i], y).reshape(b) for i in range(k)], -1)
    return gram, rhs


def solve_coefficients(gram: torch.Tensor, rhs: torch.Tensor, ridge: float = 1e-6) -> torch.Tensor:
    """LinearAG (arXiv 2312.12487): least-squares coefficients [B,K], with a ridge relative to the mean diagonal
    so that collinear regressors (e.g. a still image) give a finite minimum-norm-like answer."""
    k = gram.shape[-1]
    scale = gram.diagonal(dim1=-2, dim2=-1).mean(-1).clamp_min(1e-30)
    eye = torch.eye(k, dtype=gram.dtype, device=gram.device)
    return torch.linalg.solve(gram + ridge * scale[:, None, None] * eye, rhs)


def linear_estimate(regressors: list[torch.Tensor], coefficients: torch.Tensor) -> torch.Tensor:
    """LinearAG (arXiv 2312.12487): sum_k beta_k P_k per sample; coefficients [B,K] or [K]."""
    out = torch.zeros_like(regressors[0], dtype=torch.float32)
    for k, r in enumerate(regressors):
        beta = coefficients[..., k].float()
        if beta.ndim:
            beta = beta.reshape((-1,) + (1,) * (r.ndim - 1))
        out = out + beta * r.float()
    return out
