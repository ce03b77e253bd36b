"""The attention calls the hook hands over: RawAttention as ComfyUI makes it, AttentionCall in canonical layout for
a perturbation."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from .layers import Layer
from .tokens import joint_slices, split_attention_args


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


Perturbation = Callable[[AttentionCall], torch.Tensor]
