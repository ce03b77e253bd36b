"""The negative-context hook's per-call data: which batch rows are positive and which carry their negative, and the
rules NAG and VSF plug in (a cross-attention rule, a joint-attention rule)."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .per_thread import PerThread

CALL_KEY = "guidance_zoo_negative_context_call"


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Plain softmax attention on (B, H, N, D) tensors, fp32 softmax by SDPA; mask additive (B or 1, 1 or H, N, M)."""
    return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask)


# A cross-attention rule: (q, k+, v+, k-, v-, z+) for the positive rows, all (R, H, N, D) except z+ (R, N, H*D),
# returns those rows' output (R, N, H*D).
CrossRule = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class JointRows:
    """One joint attention call: q, k, v (B, H, N, D); the positive rows and, per positive row, its negative row."""
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    text: slice
    image: slice
    positive: list[int]
    negative_of: list[int]             # per positive row: the negative row of its sample
    anchor: list[bool]                 # per positive row: is it the positive cond's own row (not a copy such as PAG's)
    negative_len: int                  # real tokens of the negative (inline copies: the length of each copy)
    mask: torch.Tensor | None          # additive (R or 1, 1 or H, 1 or N, N): the call's mask + the negative's padding


# A joint-attention rule: (rows, normal output (B, N, H*D)) -> output (B, N, H*D) with the positive and negative rows
# rewritten.
JointRule = Callable[[JointRows, torch.Tensor], torch.Tensor]


@dataclass
class CallState:
    """Bookkeeping of one model call that carries the negative context."""
    positive: set
    negative_uuid: object
    anchor: int                        # conds index of the positive cond (its rows' negative row is the shared one)
    negative: torch.Tensor             # raw negative context (Bn, L, C) as the model's text input
    negative_len: int                  # tokens of the negative that are real (the rest is padding), joint only
    # written by each forward as it runs: per thread (ComfyUI's multi-GPU split runs forwards at once)
    text_len: int = PerThread(0)
    image_len: int | None = PerThread()     # Lumina2: image tokens before any padding tokens
    generated_len: int | None = PerThread()  # edit models: the generated image tokens (reference tokens follow)
    context_len: int = PerThread(0)         # the prompt's tokens as given to the model (Lumina2 pads them further)
    text_calls: int = PerThread(0)          # Lumina2: attention calls of its text-only refiner, which run first
    current: object = PerThread()
    calls: int = PerThread(0)
    hits: int = 0
    embedded: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)      # the negative's own model conds its row takes (negative_conds)
    cached: dict = field(default_factory=dict)     # per call layout: rows() and padding_mask() results

    def rows(self, transformer_options: dict,
             batch: int) -> tuple[list[int], list[int], dict[int, int], dict[int, int]]:
        """(positive rows, their sample index, sample -> negative row, sample -> the positive cond's own row); worked
        out once per batch layout, not per attention call. The caller must not change them."""
        uuids = tuple(transformer_options.get("uuids") or ())
        chunks = tuple(transformer_options.get("cond_or_uncond") or ())
        key = ("rows", uuids, chunks, batch)
        if key not in self.cached:
            self.cached[key] = self._rows(uuids, chunks, batch)
        return self.cached[key]

    def _rows(self, uuids: tuple, chunks: tuple, batch: int):
        per = batch // max(len(uuids), 1)
        positive, samples, negative, anchor = [], [], {}, {}
        for j, u in enumerate(uuids):
            for s in range(per):
                if u in self.positive:
                    positive.append(j * per + s)
                    samples.append(s)
                    if chunks[j] == self.anchor:
                        anchor.setdefault(s, j * per + s)
                elif u == self.negative_uuid:
                    negative[s] = j * per + s
        return positive, samples, negative, anchor

    def padding_mask(self, tokens: int, start: int, like: torch.Tensor) -> torch.Tensor:
        """(1, 1, 1, tokens) additive mask hiding the negative's padding (its tokens negative_len to context_len after
        start), made once per call layout."""
        key = ("padding", tokens, start, like.device, like.dtype)
        if key not in self.cached:
            pad = like.new_zeros(1, 1, 1, tokens)
            pad[..., start + self.negative_len:start + self.context_len] = float("-inf")
            self.cached[key] = pad
        return self.cached[key]
