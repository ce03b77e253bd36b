"""The attention calls the hook hands over: RawAttention as ComfyUI makes it, AttentionCall in canonical layout for
a perturbation."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch

from .layers import Layer
from .tokens import (from_heads_first, joint_slices, keep_tokens, reference_slice, references_beside_text,
                     reorder_tokens, split_attention_args)


@dataclass
class RawAttention:
    """One attention call's arguments as ComfyUI passes them: q, k, v (B, N, H*D), or (B, H, N, D) when canonical
    (skip_reshape); keep_canonical: the caller wants (B, H, N, D) back (skip_output_reshape)."""
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    heads: int
    mask: torch.Tensor | None = None
    canonical: bool = False
    keep_canonical: bool = False
    scale: float | None = None
    cond_or_uncond: list | None = None
    grid: tuple[int, int] | None = None    # (h, w) of the image tokens where the layer tells it (UNets)

    @classmethod
    def from_override(cls, args: tuple, kwargs: dict) -> RawAttention:
        """The call an optimized_attention_override receives."""
        q, k, v, heads, mask = split_attention_args(args, kwargs)
        transformer_options = kwargs.get("transformer_options") or {}
        return cls(q, k, v, heads, mask, kwargs.get("skip_reshape", False), kwargs.get("skip_output_reshape", False),
                   kwargs.get("scale"), transformer_options.get("cond_or_uncond"))


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
    grid: tuple[int, int] | None = None    # (h, w) of the image tokens where the layer tells it (UNets)
    image_len: int | None = None           # image tokens before padding tokens (Lumina2 with pad_tokens_multiple)

    @property
    def image(self) -> slice:
        """The image tokens' positions in the sequence."""
        return joint_slices(self.q.shape[2], self.text_len if self.joint else 0, self.text_first,
                            self.image_len if self.joint else None)[1]

    def references(self, generated: int | None) -> slice | None:
        """Edit models: the reference-latent tokens after the `generated` image tokens of a joint call, or None."""
        if not self.joint or not self.text_len:
            return None
        return reference_slice(self.q.shape[2], self.text_len, self.text_first, generated)

    def references_as_context(self, refs: slice) -> tuple[AttentionCall, torch.Tensor | None]:
        """This call with its reference tokens counted as context beside the text (the tokens reordered to [text,
        reference, generated] where needed), and the order that undoes the reordering (None: none)."""
        order = references_beside_text(self.q.shape[2], self.text_len, self.text_first, refs)
        q, k, v = (reorder_tokens(t, order, (2,)) for t in (self.q, self.k, self.v))
        return (replace(self, q=q, k=k, v=v, mask=reorder_tokens(self.mask, order, (-2, -1)), image_len=None,
                        text_len=self.text_len + refs.stop - refs.start),
                None if order is None else torch.argsort(order))


Perturbation = Callable[[AttentionCall], torch.Tensor]


def perturb_with_references(perturb: Perturbation, call: AttentionCall, refs: slice, rows: torch.Tensor | None,
                            keep: bool, normal: Callable[[], torch.Tensor]) -> torch.Tensor:
    """Edit models: the perturbation acts on the generated tokens, seeing the reference tokens as context beside the
    text, and the reference tokens' rows stay as the model computes them (normal()); rows: the perturbed batch rows
    (None: all), keep: the caller wants (B, H, N, D) back."""
    context, undo = call.references_as_context(refs)
    perturbed = from_heads_first(reorder_tokens(perturb(context), undo, (2,)), keep)
    out = normal()
    perturbed = keep_tokens(perturbed, out if rows is None else out[rows], refs, keep)
    if rows is None:
        return perturbed
    out[rows] = perturbed.to(out.dtype)
    return out
