"""NAG's negative row on joint-attention models, added inside every model call that carries positive rows.

The negative text stream must run in the same forward pass as the positive rows it guides (in every block its text
queries attend to the positive row's image tokens). ComfyUI batches conds by its free-memory estimate and may put any
two into separate calls, so the negative row is not one of its conds: an APPLY_MODEL wrapper, outermost, appends it
(a copy of a positive chunk's inputs with the negative as its text) to each call that has positive rows, and drops its
output. A call whose positive rows are not the positive cond's own (PAG's extra pass alone) also gets an unchanged
copy of the positive cond to anchor the negative stream on, so the result is the same however ComfyUI splits.
"""
from __future__ import annotations

import logging

import torch

import comfy.patcher_extension
import comfy.utils

APPLY_MODEL = comfy.patcher_extension.WrappersMP.APPLY_MODEL
ROW_KEY = "guidance_zoo_negative_row"


def take_rows(value, rows: list[int], batch: int):
    """The given batch rows of every tensor in value (nested lists, tuples, dicts) whose first dim is the batch;
    anything else as it is."""
    if isinstance(value, torch.Tensor):
        return value[rows] if value.ndim and value.shape[0] == batch else value
    if isinstance(value, dict):
        return {k: take_rows(v, rows, batch) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(take_rows(v, rows, batch) for v in value)
    return value


def append_rows(value, extra, batch: int):
    """value with extra (take_rows of it) appended along the batch dim, wherever value holds a batch tensor."""
    if isinstance(value, torch.Tensor):
        return torch.cat([value, extra]) if value.ndim and value.shape[0] == batch else value
    if isinstance(value, dict):
        return {k: append_rows(v, extra[k], batch) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(append_rows(v, e, batch) for v, e in zip(value, extra))
    return value


def fit_tokens(negative: torch.Tensor, length: int) -> torch.Tensor:
    """negative (Bn, L-, C) cut or zero-padded to length tokens."""
    negative = negative[:, :length]
    if negative.shape[1] < length:
        pad = negative.new_zeros(negative.shape[0], length - negative.shape[1], negative.shape[2])
        negative = torch.cat([negative, pad], dim=1)
    return negative


def own_rows(negative: torch.Tensor, like: torch.Tensor, per: int) -> torch.Tensor:
    """A negative_conds entry of the negative (1, ..., L-, C) for its per rows, its tokens (dim -2) cut or
    zero-padded to like's."""
    negative = negative.to(device=like.device, dtype=like.dtype)[..., :like.shape[-2], :]
    pad = list(negative.shape)
    pad[-2] = like.shape[-2] - negative.shape[-2]
    return comfy.utils.repeat_to_batch_size(torch.cat([negative, negative.new_zeros(pad)], dim=-2), per)


def install_outermost(transformer_options: dict, fn) -> None:
    """fn as the first APPLY_MODEL wrapper of these transformer_options (it sees the call as ComfyUI made it and every
    other wrapper sees the added rows)."""
    wrappers = dict(transformer_options.get("wrappers", {}))
    wrappers[APPLY_MODEL] = {ROW_KEY: [fn], **{k: v for k, v in wrappers.get(APPLY_MODEL, {}).items() if k != ROW_KEY}}
    transformer_options["wrappers"] = wrappers


class NegativeRows:
    """The APPLY_MODEL wrapper of one calc_cond_batch: call is the hook's CallState (positive uuids, anchor cond
    index, negative uuid, raw negative), row_index the cond index its rows report in cond_or_uncond."""

    def __init__(self, call, row_index: int, owner: str):
        self.call, self.row_index, self.owner = call, row_index, owner
        self.warned = False

    def __call__(self, executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options=None,
                 **kwargs):
        options = transformer_options if transformer_options is not None else {}
        uuids, chunks = list(options.get("uuids") or ()), list(options.get("cond_or_uncond") or ())
        positive = [j for j, u in enumerate(uuids) if u in self.call.positive]
        if not positive or c_crossattn is None or len(chunks) != len(uuids):
            return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
        batch = x.shape[0]
        per = batch // len(uuids)
        source = next((j for j in positive if chunks[j] == self.call.anchor), positive[0])
        rows = list(range(source * per, (source + 1) * per))
        anchored = chunks[source] == self.call.anchor
        copies = rows if anchored else rows + rows
        negative = self._negative(c_crossattn, per)
        context = torch.cat(([c_crossattn] if anchored else [c_crossattn, c_crossattn[rows]]) + [negative])
        args = {"x": x, "t": t, "c_concat": c_concat, "control": control, **kwargs}
        extended = append_rows(args, take_rows(args, copies, batch), batch)
        for key, value in self.call.extra.items():
            if key in extended:
                extended[key] = torch.cat([extended[key][:-per], own_rows(value, extended[key], per)])
        new_options = dict(options)
        new_options["uuids"] = uuids + ([] if anchored else [uuids[source]]) + [self.call.negative_uuid]
        new_options["cond_or_uncond"] = chunks + ([] if anchored else [self.call.anchor]) + [self.row_index]
        out = executor(extended.pop("x"), extended.pop("t"), extended.pop("c_concat"), context,
                       extended.pop("control"), new_options, **extended)
        return out[:batch]

    def _negative(self, context: torch.Tensor, per: int) -> torch.Tensor:
        """The negative text for per rows, fitted to the positive context's token count (recorded in the call)."""
        call, length = self.call, context.shape[1]
        negative = call.negative.to(device=context.device, dtype=context.dtype)
        if negative.shape[1] > length and not self.warned:
            logging.warning(f"{self.owner}: the negative prompt has {negative.shape[1]} tokens, the prompt {length}; "
                            f"the negative is cut to {length} tokens on this joint-attention model")
            self.warned = True
        call.context_len, call.negative_len = length, min(negative.shape[1], length)
        return comfy.utils.repeat_to_batch_size(fit_tokens(negative, length), per)
