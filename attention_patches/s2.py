"""S2-Guidance's block perturbation (arXiv 2508.12880) for the hook layer: drop a random subset of blocks."""
import torch

from ..core.s2 import choose_dropped
from .blocks import BlockPerturbation
from .layers import Layer


class RandomBlockDrop(BlockPerturbation):
    """A stochastic sub-network: each step skips a fresh random subset (drop_ratio of the candidates, at least one)."""

    def __init__(self, drop_ratio: float, seed: int):
        self.drop_ratio, self.seed = drop_ratio, seed

    def select(self, layers: list[Layer], generator: torch.Generator) -> list[Layer]:
        return [layers[i] for i in choose_dropped(len(layers), self.drop_ratio, generator)]
