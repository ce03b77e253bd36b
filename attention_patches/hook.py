"""Runs one extra model pass with a perturbation applied to chosen attention layers, on every family.

UNets: attn1 replace patches keyed (block, index, transformer_index), installed in the pass's own model_options.
DiTs: a "dit" block wrapper marks which block is running (chaining any block replace already there) and an
`optimized_attention_override` (chaining any override already there) perturbs the self/joint attention call of a
marked block. Lumina2 has no block patches: a diffusion-model wrapper counts its attention calls instead.
The patches live only in the model_options of the call that carries the extra pass. When that call is ComfyUI's
batched cond/uncond call, only the batch rows of the extra cond (found through `cond_or_uncond`) are perturbed and the
other rows get their normal attention, through whatever was installed before. Other packs' patches keep working.
A pass that reached none of its layers raises instead of silently doing nothing.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

import comfy.model_patcher
import comfy.patcher_extension

from .attention_call import AttentionCall, Perturbation, RawAttention, perturb_with_references
from .families.base import AttentionReach
from .layers import Layer, LayerMap
from .pass_state import PassState, count_generated
from .tokens import from_heads_first, heads_first, mask_rows, token_grid

PASS_KEY = "guidance_zoo_pass"


def plain_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, extra_options: dict) -> torch.Tensor:
    """ComfyUI's own attention for a UNet attn1/attn2 replace patch's arguments, when no other patch was there."""
    from comfy.ldm.modules.attention import optimized_attention
    return optimized_attention(q, k, v, extra_options["n_heads"], attn_precision=extra_options.get("attn_precision"),
                               transformer_options=extra_options)


def installed_replace(transformer_options: dict, kind: str, key: tuple):
    """The `kind` replace patch ComfyUI runs at key in these transformer_options, or None; a UNet attn key
    (block, index, transformer_index) falls back to (block, index) as ComfyUI does."""
    replaces = transformer_options.get("patches_replace", {}).get(kind, {})
    return replaces.get(key, replaces.get(key[:2]))


def chain_override(transformer_options: dict, make: Callable) -> None:
    """Install make(previous) as the optimized_attention_override, previous being the one it replaces."""
    transformer_options["optimized_attention_override"] = make(transformer_options.get("optimized_attention_override"))


def chain_replace(transformer_options: dict, kind: str, key: tuple, make: Callable, *args) -> None:
    """Install make(*args, previous) as the `kind` replace patch at key, previous being the one it replaces."""
    previous = installed_replace(transformer_options, kind, key)
    transformer_options.setdefault("patches_replace", {}).setdefault(kind, {})[key] = make(*args, previous)


def joint_text_len(args: dict) -> int:
    """The text tokens of a "dit" block's joint attention: its txt stream, cut to the block's num_tokens where it
    gets one (Mochi attends to the prompt's real tokens only)."""
    crop = args.get("num_tokens")
    return args["txt"].shape[1] if crop is None else min(args["txt"].shape[1], int(crop))


class PerturbedPass:
    """Builds model_options for one perturbed forward pass and checks afterwards that it reached its layers."""

    def __init__(self, lmap: LayerMap, layers: list[Layer], perturb: Perturbation, owner: str):
        self.lmap, self.layers, self.perturb, self.owner = lmap, layers, perturb, owner

    def new_state(self, chunk: int | None = None) -> PassState:
        return PassState(set(self.layers), chunk)

    def check(self, state: PassState) -> None:
        """Raise if a finished call reached none of the chosen layers: never a silent no-op."""
        if state.hits == 0:
            names = ", ".join(layer.name for layer in self.layers)
            raise RuntimeError(f"{self.owner}: the perturbation reached none of its layers ({names}) of this "
                               f"{self.lmap.model_name} model; this model variant is not supported by the hook yet")

    def run(self, model, conds: list, x: torch.Tensor, sigma: torch.Tensor, model_options: dict) -> list[torch.Tensor]:
        """A separate calc_cond_batch with every row perturbed."""
        import comfy.samplers
        state = self.new_state()
        out = comfy.samplers.calc_cond_batch(model, conds, x, sigma, self.options(model_options, state))
        self.check(state)
        return out

    @staticmethod
    def registered(model_options: dict, state: PassState) -> tuple[dict, dict]:
        """A clone of model_options for the call carrying state, and its transformer_options naming the state."""
        options = comfy.model_patcher.create_model_options_clone(model_options)
        transformer_options = options.setdefault("transformer_options", {})
        transformer_options[PASS_KEY] = {**transformer_options.get(PASS_KEY, {}), id(state): state}
        return options, transformer_options

    def options(self, model_options: dict, state: PassState) -> dict:
        options, transformer_options = self.registered(model_options, state)
        reach = self.lmap.family.attention_reach
        if reach is AttentionReach.REPLACE_PATCHES:
            for layer in self.layers:
                chain_replace(transformer_options, "attn1", self.lmap.patch_key(layer), self._unet_replace, layer,
                              state)
            return options
        chain_override(transformer_options, lambda previous: self._override(previous, state))
        count_generated(self.lmap.family, state, transformer_options)
        if reach is AttentionReach.CALL_COUNT:
            comfy.patcher_extension.add_wrapper_with_key(
                self.lmap.family.forward_wrapper, PASS_KEY, self.call_counter(self.lmap, state), transformer_options)
            return options
        for layer in self.lmap.layers:
            chain_replace(transformer_options, "dit", self.lmap.patch_key(layer), self.block_marker, layer, state)
        return options

    def layer_call(self, state: PassState, layer: Layer, raw: RawAttention,
                   normal: Callable[[], torch.Tensor]) -> torch.Tensor:
        """The attention output of one call of a chosen layer, normal() being the output of whatever was installed
        before. Here: perturb the chosen rows; subclasses that act on the raw call (SPG) override it."""
        q, k, v, mask = raw.q, raw.k, raw.v, raw.mask
        rows, any_row = state.rows(raw.cond_or_uncond, q.shape[0], q.device)
        if not any_row:
            return normal()
        if rows is not None:
            q, k, v, mask = q[rows], k[rows], v[rows], mask_rows(mask, rows, rows.shape[0])
        q, k, v = heads_first(raw.heads, raw.canonical, q, k, v)
        call = AttentionCall(
            q=q, k=k, v=v, layer=layer, joint=self.lmap.joint,
            text_len=state.text_len if self.lmap.joint else 0, text_first=self.lmap.text_first,
            scale=q.shape[-1] ** -0.5 if raw.scale is None else raw.scale, mask=mask, grid=raw.grid,
            image_len=state.image_len)
        state.hits += 1
        refs = call.references(state.generated_len)
        if refs is not None:
            return perturb_with_references(self.perturb, call, refs, rows, raw.keep_canonical, normal)
        perturbed = from_heads_first(self.perturb(call), raw.keep_canonical)
        if rows is None:
            return perturbed
        out = normal()
        out[rows] = perturbed.to(out.dtype)
        return out

    def _unet_replace(self, layer: Layer, state: PassState, previous):
        def replace(q, k, v, extra_options):
            def normal():
                return (previous or plain_attention)(q, k, v, extra_options)
            raw = RawAttention(q, k, v, extra_options["n_heads"], cond_or_uncond=extra_options.get("cond_or_uncond"),
                               grid=token_grid(extra_options, q.shape[1]))
            return self.layer_call(state, layer, raw, normal)
        return replace

    @staticmethod
    def block_marker(layer: Layer, state: PassState, previous):
        """A "dit" block replace that records the running layer in state (and chains `previous`)."""
        def marker(args, extra):
            if args.get("txt") is not None:
                state.text_len = joint_text_len(args)
            state.current, state.calls = layer, 0
            try:
                return previous(args, extra) if previous is not None else extra["original_block"](args)
            finally:
                state.current = None
        return marker

    @staticmethod
    def call_counter(lmap: LayerMap, state):
        """A diffusion-model wrapper (CALL_COUNT families) restarting the call count and recording the forward's text
        and image lengths in state: a PassState, or the negative-context hook's CallState (text_len, image_len,
        calls)."""
        def wrapper(executor, *args, **kwargs):
            state.text_len, state.image_len = lmap.family.token_lengths(executor.class_obj, args, kwargs)
            state.calls = 0
            return executor(*args, **kwargs)
        return wrapper

    def current_target(self, state: PassState) -> Layer | None:
        """Count one self/joint attention call; the chosen layer it belongs to, or None."""
        index = state.calls
        state.calls += 1
        if self.lmap.family.attention_reach is AttentionReach.CALL_COUNT:
            layer = self.lmap.family.counted_layer(index, self.lmap)
            return layer if layer in state.targets else None
        if state.current in state.targets and index == 0:
            return state.current
        return None

    def _override(self, previous, state: PassState):
        def override(func, *args, **kwargs):
            transformer_options = kwargs.get("transformer_options") or {}
            layer = self.current_target(state) if id(state) in transformer_options.get(PASS_KEY, {}) else None

            def normal():
                return previous(func, *args, **kwargs) if previous is not None else func(*args, **kwargs)
            if layer is None:
                return normal()
            return self.layer_call(state, layer, RawAttention.from_override(args, kwargs), normal)
        return override
