"""TPG's block perturbation (arXiv 2506.10036) for the hook layer: shuffle a block's input image tokens."""
import torch

from ..core.tpg import shuffle_tokens, token_permutation
from .blocks import BlockPerturbation


class TokenShuffle(BlockPerturbation):
    """Every chosen block runs on its input with the image tokens permuted (a new permutation per block call, the
    same for every perturbed row); text tokens keep their place and the output is not permuted back."""

    def __init__(self, seed: int):
        self.seed = seed

    def apply(self, hidden: torch.Tensor, image: slice, generator: torch.Generator) -> torch.Tensor:
        count = len(range(hidden.shape[1])[image])
        return shuffle_tokens(hidden, image, token_permutation(count, generator))
