"""A memory probe for the CPU, where torch keeps no allocator statistics: a TorchDispatchMode that sees every tensor
an aten op returns, keeping the live bytes of new (non-view) tensors, their peak, and the largest single tensor."""
from __future__ import annotations

import weakref

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten


class MemoryProbe(TorchDispatchMode):
    """with MemoryProbe() as probe: ...; then probe.peak_bytes (most bytes alive at once, counted from the start of
    the block) and probe.largest (elements of the largest tensor any op returned)."""

    def __init__(self):
        super().__init__()
        self.live = self.peak_bytes = self.largest = 0

    def _freed(self, nbytes: int) -> None:
        self.live -= nbytes

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and not t._is_view():
                nbytes = t.untyped_storage().nbytes()
                self.live += nbytes
                self.peak_bytes = max(self.peak_bytes, self.live)
                self.largest = max(self.largest, t.numel())
                weakref.finalize(t, self._freed, nbytes)
        return out
