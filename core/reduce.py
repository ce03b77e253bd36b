"""Per-sample reductions shared by the kernels: every reduction runs over all non-batch dims (4-D and 5-D alike)."""
import torch


def sample_dims(x: torch.Tensor) -> tuple[int, ...]:
    """All dims but the batch dim."""
    return tuple(range(1, x.ndim))


def per_sample_norm(x: torch.Tensor) -> torch.Tensor:
    """L2 norm of each sample over all non-batch dims, shaped to broadcast against x."""
    return torch.linalg.vector_norm(x, dim=sample_dims(x), keepdim=True)


def per_sample_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Inner product of each sample pair over all non-batch dims, shaped to broadcast."""
    return (a * b).sum(dim=sample_dims(a), keepdim=True)
