"""Token Perturbation Guidance kernels (Rajabi et al., arXiv 2506.10036): a norm-preserving token shuffle."""
import torch


def token_permutation(count: int, generator: torch.Generator) -> torch.Tensor:
    """TPG (arXiv 2506.10036): a random permutation of `count` token positions, drawn from a seeded CPU generator."""
    return torch.randperm(count, generator=generator)


def shuffle_tokens(hidden: torch.Tensor, image: slice, permutation: torch.Tensor) -> torch.Tensor:
    """TPG (arXiv 2506.10036): hidden (B, N, C) with its image tokens reordered by `permutation`, the same for every
    row; tokens outside `image` (text) keep their place. A permutation matrix, so every token's norm is kept."""
    out = hidden.clone()
    out[:, image] = hidden[:, image][:, permutation.to(hidden.device)]
    return out
