"""Measures the largest tensor a computation creates, to check that attention kernels stay linear in tokens."""
from __future__ import annotations

from typing import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor produced by an op run inside the mode."""

    def __init__(self):
        super().__init__()
        self.numel = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self.numel = max(self.numel, leaf.numel())
        return out


def largest_tensor(fn: Callable[[], object]) -> int:
    """Elements of the largest tensor any op inside fn() produced (inputs created outside do not count)."""
    with LargestTensor() as probe:
        fn()
    return probe.numel


def growth_exponent(fn_of_tokens: Callable[[int], object], tokens: tuple[int, int] = (1024, 4096)) -> float:
    """log(largest(N2) / largest(N1)) / log(N2 / N1): about 1 for linear memory, 2 for an N x N matrix."""
    import math
    small, large = (largest_tensor(lambda n=n: fn_of_tokens(n)) for n in tokens)
    return math.log(large / small) / math.log(tokens[1] / tokens[0])
