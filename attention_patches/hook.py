"""Runs one extra model pass with a perturbation applied to chosen attention layers, on every family.

UNets: attn1 replace patches keyed (block, index, transformer_index), installed in the pass's own model_options.
DiTs: a "dit" block wrapper marks which block is running (chaining any block replace already there) and an
`optimized_attention_override` (chaining any override already there) perturbs the self/joint attention call of a
marked block. Lumina2 has no block patches: a diffusion-model wrapper counts its attention calls instead.
Nothing is installed on the model itself, so the cond/uncond passes stay untouched and other packs' patches keep
working. A pass that reached none of its layers raises instead of silently doing nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

import comfy.model_patcher
import comfy.patcher_extension

from .layers import Layer, LayerMap

PASS_KEY = "guidance_zoo_pass"


@dataclass
class AttentionCall:
    """One self/joint attention call in canonical layout: q, k, v are (B, heads, tokens, head_dim)."""
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    layer: Layer
    joint: bool
    text_len: int
    text_first: bool
    scale: float | None
    mask: torch.Tensor | None


Perturbation = Callable[[AttentionCall], torch.Tensor]


class _PassState:
    def __init__(self, targets: set[Layer]):
        self.targets = targets
        self.current: Layer | None = None
        self.calls = 0
        self.text_len = 0
        self.hits = 0


def _split_attention_args(args: tuple, kwargs: dict):
    q, k, v = args[:3]
    heads = args[3] if len(args) > 3 else kwargs["heads"]
    mask = args[4] if len(args) > 4 else kwargs.get("mask")
    return q, k, v, heads, mask


def _to_canonical(t: torch.Tensor, heads: int, already: bool) -> torch.Tensor:
    if already:
        return t
    return t.reshape(t.shape[0], t.shape[1], heads, -1).transpose(1, 2)


def _from_canonical(t: torch.Tensor, keep: bool) -> torch.Tensor:
    if keep:
        return t
    b, h, n, d = t.shape
    return t.transpose(1, 2).reshape(b, n, h * d)


class PerturbedPass:
    """Builds model_options for one perturbed forward pass and checks afterwards that it reached its layers."""

    def __init__(self, lmap: LayerMap, layers: list[Layer], perturb: Perturbation, owner: str):
        self.lmap, self.layers, self.perturb, self.owner = lmap, layers, perturb, owner

    def run(self, model, conds: list, x: torch.Tensor, sigma: torch.Tensor, model_options: dict) -> list[torch.Tensor]:
        """calc_cond_batch with the perturbation installed; raises if no chosen layer was reached."""
        import comfy.samplers
        state = _PassState(set(self.layers))
        out = comfy.samplers.calc_cond_batch(model, conds, x, sigma, self.options(model_options, state))
        if state.hits == 0:
            names = ", ".join(layer.name for layer in self.layers)
            raise RuntimeError(f"{self.owner}: the perturbation reached none of its layers ({names}) of this "
                               f"{self.lmap.model_name} model; this model variant is not supported by the hook yet")
        return out

    def options(self, model_options: dict, state: _PassState) -> dict:
        mo = comfy.model_patcher.create_model_options_clone(model_options)
        to = mo.setdefault("transformer_options", {})
        to[PASS_KEY] = state
        if self.lmap.family == "unet":
            attn1 = to.setdefault("patches_replace", {}).setdefault("attn1", {})
            for layer in self.layers:
                attn1[(layer.group, layer.index, layer.sub)] = self._unet_replace(layer, state)
            return mo
        to["optimized_attention_override"] = self._override(to.get("optimized_attention_override"), state)
        if self.lmap.family == "lumina2":
            comfy.patcher_extension.add_wrapper_with_key(
                comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, PASS_KEY, self._lumina_wrapper(state), to)
            return mo
        dit = to.setdefault("patches_replace", {}).setdefault("dit", {})
        for layer in self.lmap.layers:
            key = (self.lmap.dit_keys[layer.group], layer.index)
            dit[key] = self._block_marker(layer, state, dit.get(key))
        return mo

    def _call(self, state: _PassState, layer: Layer, q, k, v, heads: int, mask, canonical: bool,
              keep_canonical: bool, scale: float | None) -> torch.Tensor:
        call = AttentionCall(
            q=_to_canonical(q, heads, canonical), k=_to_canonical(k, heads, canonical),
            v=_to_canonical(v, heads, canonical), layer=layer, joint=self.lmap.joint,
            text_len=state.text_len if self.lmap.joint else 0, text_first=self.lmap.text_first,
            scale=scale if scale is not None else None,
            mask=mask)
        if call.scale is None:
            call.scale = call.q.shape[-1] ** -0.5
        state.hits += 1
        return _from_canonical(self.perturb(call), keep_canonical)

    def _unet_replace(self, layer: Layer, state: _PassState):
        def replace(q, k, v, extra_options):
            return self._call(state, layer, q, k, v, extra_options["n_heads"], None, False, False, None)
        return replace

    def _block_marker(self, layer: Layer, state: _PassState, previous):
        def marker(args, extra):
            if args.get("txt") is not None:
                state.text_len = args["txt"].shape[1]
            state.current, state.calls = layer, 0
            try:
                return previous(args, extra) if previous is not None else extra["original_block"](args)
            finally:
                state.current = None
        return marker

    def _lumina_wrapper(self, state: _PassState):
        def wrapper(executor, *args, **kwargs):
            context = args[2] if len(args) > 2 else kwargs["context"]
            multiple = getattr(executor.class_obj, "pad_tokens_multiple", None)
            state.text_len = context.shape[1] + ((-context.shape[1]) % multiple if multiple else 0)
            state.calls = 0
            return executor(*args, **kwargs)
        return wrapper

    def _current_target(self, state: _PassState) -> Layer | None:
        index = state.calls
        state.calls += 1
        if self.lmap.family == "lumina2":
            layer = Layer("block", index - self.lmap.refiner_calls)
            return layer if layer in state.targets else None
        if state.current in state.targets and index == 0:
            return state.current
        return None

    def _override(self, previous, state: _PassState):
        def override(func, *args, **kwargs):
            to = kwargs.get("transformer_options") or {}
            layer = self._current_target(state) if to.get(PASS_KEY) is state else None
            if layer is None:
                return previous(func, *args, **kwargs) if previous is not None else func(*args, **kwargs)
            q, k, v, heads, mask = _split_attention_args(args, kwargs)
            skip = kwargs.get("skip_reshape", False)
            return self._call(state, layer, q, k, v, heads, mask, skip, kwargs.get("skip_output_reshape", False),
                              kwargs.get("scale"))
        return override
