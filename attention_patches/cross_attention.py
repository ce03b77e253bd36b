"""Replaces the text cross-attention of chosen layers on every model pass (no extra pass), on the families that have a
separate cross-attention: the UNets (attn2) and Wan (each block's attention calls after its first, self-attention,
one).

UNets: attn2 replace patches keyed (block, index, transformer_index), chaining any attn2 replace already installed
(an IPAdapter-style one). Wan: a "dit" block marker (chaining any block replace there) tells an
`optimized_attention_override` (chaining any override there) which block is running. The replacement gets a call
with q, k, v in (B, heads, tokens, head_dim) layout and `installed`, the output of whatever attention was installed
before it (None when that is ComfyUI's own attention), so it can add its change on top instead of discarding it.
A model call that reached none of the chosen layers raises instead of silently doing nothing.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

import comfy.patcher_extension

from ..core.pag import additive_mask
from .hook import PassState, PerturbedPass, _from_canonical, _split_attention_args, _to_canonical
from .layers import Layer, LayerMap

WRAPPER_KEY = "guidance_zoo_cross_attention"
CROSS_ATTENTION_FAMILIES = ("unet", "wan")


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


CrossAttention = Callable[[CrossAttentionCall], torch.Tensor]


def check_cross_attention(lmap: LayerMap) -> None:
    """Raise naming the model when it has no separate cross-attention (joint-attention families)."""
    if lmap.family not in CROSS_ATTENTION_FAMILIES:
        raise ValueError(f"this {lmap.model_name} model has no separate cross-attention (text and image tokens share "
                         f"one joint attention); cross-attention patches apply to SD1.5, SDXL and Wan")


def install_cross_attention(patcher, lmap: LayerMap, layers: list[Layer], replace: CrossAttention, owner: str) -> None:
    """Install `replace` on the cross-attention of `layers` of a (cloned) ModelPatcher, for every pass."""
    check_cross_attention(lmap)
    tracker = PassState(set(layers))
    to = patcher.model_options.setdefault("transformer_options", {})
    if lmap.family == "unet":
        attn2 = to.get("patches_replace", {}).get("attn2", {})
        for layer in layers:
            key = (layer.group, layer.index, layer.sub)
            previous = attn2.get(key, attn2.get(key[:2]))
            patcher.set_model_attn2_replace(_unet_replace(replace, layer, previous, tracker), *key)
    else:
        dit = to.get("patches_replace", {}).get("dit", {})
        for layer in layers:
            key = (lmap.dit_keys[layer.group], layer.index)
            patcher.set_model_patch_replace(PerturbedPass.block_marker(layer, tracker, dit.get(key)), "dit", *key)
        to = patcher.model_options["transformer_options"]
        to["optimized_attention_override"] = _override(replace, tracker, to.get("optimized_attention_override"))
    names = ", ".join(layer.name for layer in layers)
    patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, WRAPPER_KEY,
                                 _reach_check(tracker, owner, names, lmap.model_name))


def _reach_check(tracker: PassState, owner: str, names: str, model_name: str):
    def wrapper(executor, *args, **kwargs):
        tracker.hits, tracker.current = 0, None
        out = executor(*args, **kwargs)
        if tracker.hits == 0:
            raise RuntimeError(f"{owner}: the cross-attention patch reached none of its layers ({names}) of this "
                               f"{model_name} model; this model variant is not supported yet")
        return out
    return wrapper


def _run(replace: CrossAttention, tracker: PassState, layer: Layer, q, k, v, heads: int, mask, canonical: bool,
         keep_canonical: bool, scale: float | None, installed: Callable[[], torch.Tensor] | None) -> torch.Tensor:
    head_dim = q.shape[-1] if canonical else q.shape[-1] // heads
    q, k, v = (_to_canonical(t, head_dim, canonical, heads) for t in (q, k, v))
    before = None if installed is None else (lambda: _to_canonical(installed(), head_dim, keep_canonical, heads))
    tracker.hits += 1
    out = replace(CrossAttentionCall(q, k, v, head_dim ** -0.5 if scale is None else scale,
                                     additive_mask(mask, torch.float32), layer, before))
    return _from_canonical(out, keep_canonical)


def _unet_replace(replace: CrossAttention, layer: Layer, previous, tracker: PassState):
    def attn2(q, k, v, extra_options):
        installed = None if previous is None else (lambda: previous(q, k, v, extra_options))
        return _run(replace, tracker, layer, q, k, v, extra_options["n_heads"], None, False, False, None, installed)
    return attn2


def _override(replace: CrossAttention, tracker: PassState, previous):
    def override(func, *args, **kwargs):
        def normal():
            return previous(func, *args, **kwargs) if previous is not None else func(*args, **kwargs)
        layer = tracker.current
        if layer is None:
            return normal()
        index, tracker.calls = tracker.calls, tracker.calls + 1
        q, k, v, heads, mask = _split_attention_args(args, kwargs)
        canonical = kwargs.get("skip_reshape", False)
        tokens = 2 if canonical else 1
        # A block's first call is its self-attention; a call whose keys differ in length from its queries is cross.
        if index == 0 and k.shape[tokens] == q.shape[tokens]:
            return normal()
        return _run(replace, tracker, layer, q, k, v, heads, mask, canonical, kwargs.get("skip_output_reshape", False),
                    kwargs.get("scale"), normal if previous is not None else None)
    return override
