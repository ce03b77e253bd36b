"""Forward hooks for the block perturbations of families without block patches (UNets, Lumina2, PixArt, Cosmos...):
a wrapper registers them on the chosen block modules for the one model call that carries the pass and removes them
in `finally`; no module's forward is replaced."""
from __future__ import annotations

import torch

from .families.base import AttentionReach
from .layers import Layer


class BlockHooks:
    """The forward-hook reach of BlockPass (blocks.py): `_start` and `_keep_input` come from it."""

    @staticmethod
    def _recorder(state):
        """An APPLY_MODEL wrapper keeping the call's transformer_options (apply_model's 6th argument) in state while
        it runs, for blocks that get none (PixArt, HunyuanDiT)."""
        def wrapper(executor, *args, **kwargs):
            state.call_options = kwargs.get("transformer_options") or (args[5] if len(args) > 5 else {})
            try:
                return executor(*args, **kwargs)
            finally:
                state.call_options = {}
        return wrapper

    def _hooks_wrapper(self, state):
        def wrapper(executor, *args, **kwargs):
            modules = self.lmap.family.block_modules(executor.class_obj)
            handles = []
            try:
                for layer in self.layers:
                    if layer in modules:
                        handles.append(modules[layer].register_forward_pre_hook(
                            self._pre_hook(layer, state), with_kwargs=True))
                        handles.append(modules[layer].register_forward_hook(
                            self._post_hook(layer, state), with_kwargs=True))
                if self.lmap.family.attention_reach is AttentionReach.CALL_COUNT:
                    return self.call_counter(self.lmap, state)(executor, *args, **kwargs)
                return executor(*args, **kwargs)
            finally:
                for handle in handles:
                    handle.remove()
                state.pending.clear()
        return wrapper

    def _pre_hook(self, layer: Layer, state):
        def pre_hook(module, args: tuple, kwargs: dict):
            started = self._start(layer, state, args[0], kwargs.get("transformer_options") or {})
            if started is None:
                return None
            rows, changed = started
            if changed is None:
                inputs = self.lmap.family.block_outputs(layer)
                state.pending[layer] = (tuple(args[i] if rows is None else args[i].clone() for i in inputs), rows)
                return None
            return (changed,) + tuple(args[1:]), kwargs
        return pre_hook

    def _post_hook(self, layer: Layer, state):
        def post_hook(module, args: tuple, kwargs: dict, output: torch.Tensor):
            pending = state.pending.pop(layer, None)
            if pending is None:
                return None
            outputs = output if isinstance(output, tuple) else (output,)
            kept = tuple(self._keep_input(pending[1], before, after) for before, after in zip(pending[0], outputs))
            return kept if isinstance(output, tuple) else kept[0]
        return post_hook
