"""S2-Guidance kernels (Chen et al., arXiv 2508.12880): which blocks a stochastic sub-network drops."""
import torch


def dropped_count(candidates: int, drop_ratio: float) -> int:
    """S2-Guidance (arXiv 2508.12880): how many of the candidate blocks to drop, at least one."""
    return min(candidates, max(1, round(drop_ratio * candidates)))


def choose_dropped(candidates: int, drop_ratio: float, generator: torch.Generator) -> list[int]:
    """S2-Guidance (arXiv 2508.12880): indices (ascending) of a uniformly random subset of the candidate blocks."""
    chosen = torch.randperm(candidates, generator=generator)[:dropped_count(candidates, drop_ratio)]
    return sorted(int(i) for i in chosen)
