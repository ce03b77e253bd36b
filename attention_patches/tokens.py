"""Token and head layouts of attention calls: which batch rows and tokens are which, and the (B, N, H*D) <->
(B, H, N, D) reshapes between ComfyUI's attention calls and our kernels."""
from __future__ import annotations

import torch


def mask_rows(mask: torch.Tensor | None, rows, batch: int) -> torch.Tensor | None:
    """The given batch rows of an attention mask that has one row per sample of a batch of `batch`; a mask shared by
    every row (or None) as it is."""
    if mask is not None and mask.ndim > 2 and mask.shape[0] == batch > 1:
        return mask[rows]
    return mask


def joint_slices(tokens: int, text_len: int, text_first: bool, image_len: int | None = None) -> tuple[slice, slice]:
    """(text, image) positions in a joint sequence of `tokens` tokens whose text_len text tokens come first or last;
    image_len: the image tokens when padding tokens (Lumina2 with pad_tokens_multiple) or reference tokens follow."""
    if text_first:
        return slice(0, text_len), slice(text_len, tokens if image_len is None else text_len + image_len)
    return slice(tokens - text_len, tokens), slice(0, tokens - text_len if image_len is None else image_len)


def reference_slice(tokens: int, text_len: int, text_first: bool, generated: int | None) -> slice | None:
    """The reference-latent tokens edit models append after the `generated` image tokens, in a sequence of `tokens`
    tokens (text_len of them text, first or last); None when there are none."""
    if generated is None or tokens <= text_len + generated:
        return None
    start = (text_len if text_first else 0) + generated
    return slice(start, start + tokens - text_len - generated)


def references_beside_text(tokens: int, text_len: int, text_first: bool, references: slice) -> torch.Tensor | None:
    """The token order that puts the reference tokens next to the text, so that the two are one context block at an
    end of the sequence: [text, generated, reference] -> [text, reference, generated]; None for [generated,
    reference, text], which already is."""
    if not text_first:
        return None
    order = torch.arange(tokens)
    return torch.cat([order[:text_len], order[references], order[text_len:references.start]])


def reorder_tokens(t: torch.Tensor | None, order: torch.Tensor | None, dims: tuple[int, ...]) -> torch.Tensor | None:
    """t with the given dims (those of the sequence's length) taken in `order` (None: as it is); None or a broadcast
    dim as it is."""
    for dim in dims if order is not None else ():
        if t is not None and t.ndim >= -dim and t.shape[dim] == order.shape[0]:
            t = t.index_select(dim, order.to(t.device))
    return t


def token_grid(extra_options: dict, tokens: int) -> tuple[int, int] | None:
    """The (h, w) grid of a UNet attention layer's image tokens (its activations_shape), None when it does not tell
    or its tokens are not that grid."""
    shape = extra_options.get("activations_shape")
    return (shape[-2], shape[-1]) if shape is not None and shape[-2] * shape[-1] == tokens else None


def chunk_rows(cond_or_uncond: list | None, chunk: int, batch: int) -> slice | None:
    """Batch rows of the first chunk of a call carrying cond index `chunk`, or None when the call has none."""
    chunks = list(cond_or_uncond or [])
    if chunk not in chunks:
        return None
    per = batch // len(chunks)
    start = chunks.index(chunk) * per
    return slice(start, start + per)


def split_attention_args(args: tuple, kwargs: dict):
    """(q, k, v, heads, mask) of a call to ComfyUI's optimized attention, as an attention override receives it."""
    q, k, v = args[:3]
    heads = args[3] if len(args) > 3 else kwargs["heads"]
    mask = args[4] if len(args) > 4 else kwargs.get("mask")
    return q, k, v, heads, mask


def to_heads_first(t: torch.Tensor, head_dim: int, already: bool, heads: int) -> torch.Tensor:
    """(B, N, H*D) or, when already, (B, H, N, D) -> (B, H, N, D); grouped k/v heads are repeated up to heads."""
    if not already:
        t = t.reshape(t.shape[0], t.shape[1], -1, head_dim).transpose(1, 2)
    return t.repeat_interleave(heads // t.shape[1], dim=1) if t.shape[1] != heads else t


def heads_first(heads: int, already: bool, q: torch.Tensor, *others: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """q and any of k, v, outputs as ComfyUI's attention gets them (skip_reshape: already) -> (B, H, N, D) each,
    with the query's head size."""
    head_dim = q.shape[-1] if already else q.shape[-1] // heads
    return tuple(to_heads_first(t, head_dim, already, heads) for t in (q, *others))


def heads_last(t: torch.Tensor) -> torch.Tensor:
    """(B, H, N, D) -> (B, N, H*D)."""
    b, h, n, d = t.shape
    return t.transpose(1, 2).reshape(b, n, h * d)


def from_heads_first(t: torch.Tensor, keep: bool) -> torch.Tensor:
    """An attention output (B, H, N, D) in the layout the caller asked for (skip_output_reshape: keep)."""
    return t if keep else heads_last(t)


def keep_tokens(out: torch.Tensor, plain: torch.Tensor, tokens: slice, canonical: bool) -> torch.Tensor:
    """A copy of out with the given tokens taken from plain (both (B, N, H*D), or (B, H, N, D) when canonical)."""
    out = out.clone()
    index = (slice(None), slice(None), tokens) if canonical else (slice(None), tokens)
    out[index] = plain[index].to(out.dtype)
    return out
