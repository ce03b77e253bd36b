"""Replaces the text cross-attention of chosen layers on every model pass (no extra pass), on every family.

UNets: attn2 replace patches keyed (block, index, transformer_index), chaining any attn2 replace already installed
(an IPAdapter-style one). Wan: a "dit" block marker (chaining any block replace there) tells an
`optimized_attention_override` (chaining any override there) which block is running; each block's attention calls
after its first (self-attention) one are cross-attention. The replacement gets a call with q, k, v in
(B, heads, tokens, head_dim) layout and `installed`, the output of whatever attention was installed before it (None
when that is ComfyUI's own attention), so it can add its change on top instead of discarding it.
Joint-attention families (SD3, Flux, Flux2, Chroma, Qwen-Image, Lumina2) have no separate cross-attention: there the
joint attention call of each chosen layer (found the way hook.py finds it: block markers on every block, Lumina2 by
counting calls) is handed over whole, with `text` telling where its text tokens are.
A model call that reached none of the chosen layers raises instead of silently doing nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from collections.abc import Callable

import torch

from ..core.attention import additive_mask
from .attention_call import RawAttention
from .hook import PerturbedPass, chain_override, installed_replace
from .pass_state import PassState
from .tokens import from_heads_first, heads_first, joint_slices
from .families.base import AttentionReach, TextEntry
from .layers import Layer, LayerMap

WRAPPER_KEY = "guidance_zoo_cross_attention"


@dataclass
class CrossAttentionCall:
    """One cross-attention call: q (B, H, Nq, D); k, v (B, H, Nk, D); mask additive fp32 or None."""
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    scale: float
    mask: torch.Tensor | None
    layer: Layer
    installed: Callable[[], torch.Tensor] | None    # what was installed before, in the same layout; None = plain
    text: slice | None = None                       # joint attention: the text tokens' positions; None: cross


CrossAttention = Callable[[CrossAttentionCall], torch.Tensor]


class _SharedPassState(PassState):
    """A pass state living in the model's own options: model clones share it instead of copying it."""

    def __deepcopy__(self, memo):
        return self


def install_cross_attention(patcher, lmap: LayerMap, layers: list[Layer], replace: CrossAttention, owner: str) -> None:
    """Install `replace` on the cross-attention of `layers` of a (cloned) ModelPatcher, for every pass (on
    joint-attention families on the joint attention of those layers)."""
    tracker = _SharedPassState(set(layers))
    names = ", ".join(layer.name for layer in layers)
    patcher.add_wrapper_with_key(lmap.family.forward_wrapper, WRAPPER_KEY,
                                 _reach_check(tracker, owner, names, lmap.model_name))
    transformer_options = patcher.model_options.setdefault("transformer_options", {})
    if lmap.family.text_entry is TextEntry.CROSS_ATTENTION:
        for layer in layers:
            key = lmap.patch_key(layer)
            previous = installed_replace(transformer_options, "attn2", key)
            patcher.set_model_attn2_replace(_unet_replace(replace, layer, previous, tracker), *key)
        return
    finder = PerturbedPass(lmap, layers, None, owner)
    if lmap.family.attention_reach is AttentionReach.CALL_COUNT:
        patcher.add_wrapper_with_key(lmap.family.forward_wrapper, WRAPPER_KEY + "_calls",
                                     PerturbedPass.call_counter(lmap, tracker))
    else:
        for layer in lmap.layers if lmap.joint else layers:
            key = lmap.patch_key(layer)
            marker = PerturbedPass.block_marker(layer, tracker, installed_replace(transformer_options, "dit", key))
            patcher.set_model_patch_replace(marker, "dit", *key)
    transformer_options = patcher.model_options["transformer_options"]
    select = _joint_call(finder) if lmap.joint else _cross_call
    if not lmap.joint and lmap.family.attention_reach is AttentionReach.CALL_COUNT:
        select = _counted_cross_call(lmap)
    if not lmap.joint and lmap.family.text_cross_calls is not None:
        select = _listed_cross_call(lmap.family.text_cross_calls)
    chain_override(transformer_options, lambda previous: _override(replace, tracker, select, previous))


def _reach_check(tracker: PassState, owner: str, names: str, model_name: str):
    def wrapper(executor, *args, **kwargs):
        tracker.hits, tracker.current = 0, None
        out = executor(*args, **kwargs)
        if tracker.hits == 0:
            raise RuntimeError(f"{owner}: the cross-attention patch reached none of its layers ({names}) of this "
                               f"{model_name} model; this model variant is not supported yet")
        return out
    return wrapper


def _run(replace: CrossAttention, tracker: PassState, layer: Layer, raw: RawAttention,
         installed: Callable[[], torch.Tensor] | None, text: slice | None = None) -> torch.Tensor:
    q, k, v = heads_first(raw.heads, raw.canonical, raw.q, raw.k, raw.v)
    before = None if installed is None else (lambda: heads_first(raw.heads, raw.keep_canonical, installed())[0])
    tracker.hits += 1
    out = replace(CrossAttentionCall(q, k, v, q.shape[-1] ** -0.5 if raw.scale is None else raw.scale,
                                     additive_mask(raw.mask, torch.float32), layer, before, text))
    return from_heads_first(out, raw.keep_canonical)


def _unet_replace(replace: CrossAttention, layer: Layer, previous, tracker: PassState):
    def attn2(q, k, v, extra_options):
        installed = None if previous is None else (lambda: previous(q, k, v, extra_options))
        return _run(replace, tracker, layer, RawAttention(q, k, v, extra_options["n_heads"]), installed)
    return attn2


def _cross_call(tracker: PassState, q, k, tokens: int) -> tuple[Layer | None, slice | None]:
    """Wan: a chosen block's calls after its first are cross-attention (as is any whose keys differ in length)."""
    layer = tracker.current
    if layer is None:
        return None, None
    index, tracker.calls = tracker.calls, tracker.calls + 1
    return (None if index == 0 and k.shape[tokens] == q.shape[tokens] else layer), None


def _counted_cross_call(lmap: LayerMap):
    """Cross-attention families without block patches (Cosmos Predict2): the adapter names the counted call's layer."""
    def select(tracker: PassState, q, k, tokens: int) -> tuple[Layer | None, slice | None]:
        index, tracker.calls = tracker.calls, tracker.calls + 1
        layer = lmap.family.counted_cross_layer(index, lmap)
        return (layer if layer in tracker.targets else None), None
    return select


def _listed_cross_call(calls: tuple[int, ...]):
    """Blocks with other calls beside self and text cross-attention (LTX-2's audio stream): the adapter lists which
    calls of a marked block are its text cross-attention."""
    def select(tracker: PassState, q, k, tokens: int) -> tuple[Layer | None, slice | None]:
        layer = tracker.current
        if layer is None:
            return None, None
        index, tracker.calls = tracker.calls, tracker.calls + 1
        return (layer if index in calls else None), None
    return select


def _joint_call(finder: PerturbedPass):
    """Joint families: the hook's own rule for which call is a chosen layer's joint attention, and its text tokens."""
    def select(tracker: PassState, q, k, tokens: int) -> tuple[Layer | None, slice | None]:
        layer = finder.current_target(tracker)
        return layer, joint_slices(q.shape[tokens], tracker.text_len, finder.lmap.text_first)[0]
    return select


def _override(replace: CrossAttention, tracker: PassState, select, previous):
    def override(func, *args, **kwargs):
        def normal():
            return previous(func, *args, **kwargs) if previous is not None else func(*args, **kwargs)
        raw = RawAttention.from_override(args, kwargs)
        layer, text = select(tracker, raw.q, raw.k, 2 if raw.canonical else 1)
        if layer is None:
            return normal()
        return _run(replace, tracker, layer, raw, normal if previous is not None else None, text)
    return override
