"""Per-thread attributes for pass bookkeeping that one model forward writes as it runs (the running block, its
attention call count, the text length): ComfyUI 0.33's multi-GPU path runs model copies in threads at once over the
same model_options, so each thread keeps its own value while counters such as hits stay shared."""
from __future__ import annotations

import threading
from typing import Any
from collections.abc import Callable


class PerThread:
    """A descriptor whose value is kept per thread; `factory` makes a fresh mutable default (a dict) per thread."""

    def __init__(self, default: Any = None, factory: Callable[[], Any] | None = None):
        self.default, self.factory = default, factory

    def __set_name__(self, owner, name: str) -> None:
        self.name = name

    def _values(self, obj) -> dict:
        return obj.__dict__.setdefault("_per_thread", {}).setdefault(threading.get_ident(), {})

    def __get__(self, obj, owner=None):
        if obj is None:
            return self.default
        values = self._values(obj)
        if self.name not in values:
            values[self.name] = self.factory() if self.factory is not None else self.default
        return values[self.name]

    def __set__(self, obj, value) -> None:
        self._values(obj)[self.name] = value
