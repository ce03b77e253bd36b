"""Memory probes for the CPU, where torch keeps no allocator statistics: the largest tensor a computation creates and
the peak of the bytes its new tensors hold at once, to check that attention kernels stay linear in tokens."""
from __future__ import annotations

import math
import weakref
from collections.abc import Callable

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


class MemoryProbe(TorchDispatchMode):
    """Sees every tensor an op returns inside the mode: largest (elements of the largest one) and peak_bytes (most
    bytes held at once by the new, non-view tensors made inside the mode; inputs made outside do not count)."""

    def __init__(self):
        super().__init__()
        self.live = self.peak_bytes = self.largest = 0

    def _freed(self, nbytes: int) -> None:
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for leaf in tree_leaves(out):
            if isinstance(leaf, torch.Tensor):
                self.largest = max(self.largest, leaf.numel())
                if not leaf._is_view():
                    nbytes = leaf.untyped_storage().nbytes()
                    self.live += nbytes
                    self.peak_bytes = max(self.peak_bytes, self.live)
                    weakref.finalize(leaf, self._freed, nbytes)
        return out


def largest_tensor(fn: Callable[[], object]) -> int:
    """Elements of the largest tensor any op inside fn() produced (inputs created outside do not count)."""
    with MemoryProbe() as probe:
        fn()
    return probe.largest


def growth_exponent(fn_of_tokens: Callable[[int], object], tokens: tuple[int, int] = (1024, 4096)) -> float:
    """log(largest(N2) / largest(N1)) / log(N2 / N1): about 1 for linear memory, 2 for an N x N matrix."""
    small, large = (largest_tensor(lambda n=n: fn_of_tokens(n)) for n in tokens)
    return math.log(large / small) / math.log(tokens[1] / tokens[0])
