"""A negative prompt inside attention (NAG arXiv 2505.21179, VSF arXiv 2508.10931): the hook that brings a second text
context to every cross/joint attention layer, for the positive cond's rows only, without forking model code.

How the negative context reaches each layer:
- UNets (SD1.5, SDXL): an attn2_patch (runs before the k/v projections) appends the negative tokens to the context of
  every row; an attn2 replace per transformer block (chaining any replace already there) splits K/V back into
  [K+, K-]: rows that are not the positive cond attend to K+ only, exactly as before. 1 model evaluation.
- Wan: a "dit" block wrapper (chaining any block replace) appends the negative tokens, embedded by the model's own
  text embedding, to the block's context; the block's cross-attention call is split the same way. 1 evaluation.
- Joint attention (SD3, Flux, Flux2, Chroma, Qwen-Image): the text is not a fixed context but a stream that changes
  in every block, so the negative prompt runs as one extra batch row (its own text, RoPE and modulation computed by
  the model itself), added inside each model call that has positive rows (negative_row.py), so it works however
  ComfyUI splits its batch. In every joint attention call the negative row's text queries
  attend to [its own text, the positive row's image tokens], and the positive row's image queries attend to
  [their image tokens, the negative row's text] for the negative-context output. The negative row's own image
  tokens are never read. Cost: 1 extra evaluation per positive sample.
The negative CONDITIONING is added to the sampler's conds at the start of each run (OUTER_SAMPLE wrapper), so
ComfyUI's own code encodes it for the model; the cond/uncond calls are found through chainable CALC_COND_BATCH
wrappers. Rows are matched by the uuids ComfyUI puts in transformer_options, so batches of any size, PAG's extra
pass of the positive cond and any batch order work. A call that reaches no layer raises.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from collections.abc import Callable

import torch

import comfy.model_patcher
import comfy.patcher_extension
import comfy.sampler_helpers
import comfy.utils

from ..core.attention import additive_mask
from ..core.run_steps import check_run, round_down
from ..core.run_state import SharedPatch, run_state
from .hook import (PerturbedPass, chain_replace, heads_first, heads_last, joint_slices, mask_rows,
                   split_attention_args)
from .layers import LayerMap
from .negative_row import NegativeRows, install_outermost
from .per_thread import PerThread

WRAPPER_KEY = "guidance_zoo_negative_context"
CALL_KEY = "guidance_zoo_negative_context_call"
EXTENDED = "guidance_zoo_negative_tokens"


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
    context_len: int = PerThread(0)         # the prompt's tokens as given to the model (Lumina2 pads them further)
    text_calls: int = PerThread(0)          # Lumina2: attention calls of its text-only refiner, which run first
    current: object = PerThread()
    calls: int = PerThread(0)
    hits: int = 0
    embedded: dict = field(default_factory=dict)
    cached: dict = field(default_factory=dict)     # per call layout: rows() and padding_mask() results

    def rows(self, to: dict, batch: int) -> tuple[list[int], list[int], dict[int, int], dict[int, int]]:
        """(positive rows, their sample index, sample -> negative row, sample -> the positive cond's own row); worked
        out once per batch layout, not per attention call. The caller must not change them."""
        uuids = tuple(to.get("uuids") or ())
        chunks = tuple(to.get("cond_or_uncond") or ())
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


def installed(patcher) -> list[NegativeContext]:
    """The negative-context hooks (NAG, VSF) already installed on a ModelPatcher, outermost first."""
    wrappers = patcher.get_wrappers(comfy.patcher_extension.WrappersMP.CALC_COND_BATCH, WRAPPER_KEY)
    return [w.__self__ for w in wrappers if isinstance(getattr(w, "__self__", None), NegativeContext)]


class NegativeContext(SharedPatch):
    """Installs a negative prompt inside every cross/joint attention layer of a model, applied by a rule."""

    def __init__(self, lmap: LayerMap, negative: list, owner: str, cross_rule: CrossRule | None,
                 joint_rule: JointRule | None, sigma_end: float = 0.0, inline_copies: int = 0,
                 trim_zero_padding: bool = False):
        """inline_copies > 0: on joint attention the negative is appended that many times to the positive prompt's
        own text (one row, VSF's layout) instead of running as a row of its own (NAG). trim_zero_padding: drop the
        negative's trailing all-zero tokens (padding of zero-masked text encoders such as Wan's umT5)."""
        self.lmap, self.negative, self.owner = lmap, negative, owner
        self.cross_rule, self.joint_rule, self.sigma_end = cross_rule, joint_rule, sigma_end
        self.inline_copies, self.trim_zero_padding = inline_copies, trim_zero_padding
        self.cond_key = f"guidance_zoo_negative_{id(self)}"

    @property
    def joint(self) -> bool:
        return self.lmap.family in ("flux", "mmdit", "qwen", "lumina2")

    def install(self, patcher) -> None:
        patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, WRAPPER_KEY, self._outer)
        patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.CALC_COND_BATCH, WRAPPER_KEY, self._batch)

    # -- sampler level -------------------------------------------------------------------------------------------
    def _outer(self, executor, *args, **kwargs):
        guider = executor.class_obj
        guider.conds[self.cond_key] = comfy.sampler_helpers.convert_cond(self.negative)
        state = run_state(guider.model_options, self)
        state["conds"], state["uuid"] = guider.conds, uuid.uuid4()
        try:
            return executor(*args, **kwargs)
        finally:
            guider.conds.pop(self.cond_key, None)

    def idle_message(self, sigmas: list[float]) -> str | None:
        if max(sigmas) >= self.sigma_end:
            return None
        return (f"{self.owner}: sigma_end {self.sigma_end:g} is above every step's sigma (highest {max(sigmas):.4g}) "
                f"of this {len(sigmas)}-step schedule, so it never runs; try sigma_end {round_down(max(sigmas), 3):g}")

    def _batch(self, executor, model, conds, x, timestep, model_options):
        state = run_state(model_options, self)
        sampler_conds = state.get("conds")
        if sampler_conds is None:
            raise RuntimeError(f"{self.owner}: the model was called outside a sampler run (no negative prompt); "
                               "sample it through KSampler, SamplerCustom(Advanced) or a CFGGuider")
        check_run(model_options, self, self.idle_message)
        if float(timestep.min()) < self.sigma_end:
            return executor(model, conds, x, timestep, model_options)
        positive = {c.get("uuid") for c in sampler_conds.get("positive", [])}
        chunks = [i for i, c in enumerate(conds) if c is not None and any(e.get("uuid") in positive for e in c)]
        if not chunks:
            return executor(model, conds, x, timestep, model_options)
        encoded = sampler_conds.get(self.cond_key) or []
        if not encoded or "c_crossattn" not in encoded[0].get("model_conds", {}):
            raise RuntimeError(f"{self.owner}: the negative prompt gave this model no text context")
        negative = encoded[0]["model_conds"]["c_crossattn"].cond
        if self.trim_zero_padding:
            real = negative.abs().amax(dim=(0, 2)).nonzero()
            negative = negative[:, :int(real.max()) + 1 if len(real) else 1]
        call = CallState(positive, state["uuid"], chunks[0], negative, negative.shape[1])
        mo = comfy.model_patcher.create_model_options_clone(model_options)
        to = mo.setdefault("transformer_options", {})
        to[CALL_KEY] = {**to.get(CALL_KEY, {}), id(self): call}
        if self.joint and self.inline_copies:
            conds = list(conds)
            for i in chunks:
                conds[i] = [self._inline(entry, call) for entry in conds[i]]
            self._install_joint(to, call, model)
        elif self.joint:
            install_outermost(to, NegativeRows(call, len(conds), self.owner))
            self._install_joint(to, call, model)
        elif self.lmap.family == "unet":
            self._install_unet(to, call)
        elif self.lmap.family == "wan":
            self._install_wan(to, call, model)
        out = executor(model, list(conds), x, timestep, mo)
        if call.hits == 0:
            raise RuntimeError(f"{self.owner}: the negative prompt reached none of the attention layers of this "
                               f"{self.lmap.model_name} model; this model variant is not supported yet")
        return out

    def _inline(self, entry: dict, call: CallState) -> dict:
        """A positive cond entry whose text is followed by inline_copies copies of the negative."""
        crossattn = entry["model_conds"]["c_crossattn"]
        context = crossattn.cond
        negative = call.negative.to(device=context.device, dtype=context.dtype)
        batch = max(context.shape[0], negative.shape[0])
        context, negative = (comfy.utils.repeat_to_batch_size(t, batch) for t in (context, negative))
        out = dict(entry)
        out["model_conds"] = {**entry["model_conds"], "c_crossattn": type(crossattn)(
            torch.cat([context] + [negative] * self.inline_copies, dim=1))}
        return out

    # -- UNets: attn2 ------------------------------------------------------------------------------------------------
    def _install_unet(self, to: dict, call: CallState) -> None:
        patches = to.setdefault("patches", {})
        patches["attn2_patch"] = list(patches.get("attn2_patch", [])) + [self._append_tokens(call)]
        for layer in self.lmap.layers:
            chain_replace(to, "attn2", self.lmap.patch_key(layer), self._unet_replace, call)

    def _negative_tokens(self, call: CallState, to: dict, batch: int, like: torch.Tensor) -> torch.Tensor:
        """(batch, L-, C): each positive row's negative (per sample), zeros for the other rows."""
        positive, samples, _, _ = call.rows(to, batch)
        negative = call.negative.to(device=like.device, dtype=like.dtype)
        out = like.new_zeros(batch, negative.shape[1], like.shape[-1])
        if positive:
            per = max(samples) + 1
            out[positive] = comfy.utils.repeat_to_batch_size(negative, per)[samples]
        return out

    def _append_tokens(self, call: CallState):
        def patch(n, context, value, extra_options):
            tokens = self._negative_tokens(call, extra_options, context.shape[0], context)
            extra_options[EXTENDED] = tokens.shape[1]
            value = context if value is None else value
            return n, torch.cat([context, tokens], dim=1), torch.cat([value, tokens.to(value.dtype)], dim=1)
        return patch

    def _unet_replace(self, call: CallState, previous):
        def replace(q, k, v, extra_options):
            added = extra_options.get(EXTENDED, 0)
            length = k.shape[1] - added
            k_pos, v_pos = k[:, :length], v[:, :length]
            if previous is not None:
                out = previous(q, k_pos, v_pos, extra_options)
            else:
                from comfy.ldm.modules.attention import optimized_attention
                out = optimized_attention(q, k_pos, v_pos, extra_options["n_heads"],
                                          attn_precision=extra_options.get("attn_precision"),
                                          transformer_options=extra_options)
            if not added:
                return out
            return self._cross(call, extra_options, q, k, v, length, extra_options["n_heads"], out)
        return replace

    def _cross(self, call: CallState, to: dict, q, k, v, length: int, heads: int, out: torch.Tensor) -> torch.Tensor:
        """Apply the cross rule to the positive rows; q, k, v (B, N, H*D) with k/v = [K+, K-]."""
        positive, _, _, _ = call.rows(to, q.shape[0])
        if not positive:
            return out
        call.hits += 1
        qp, kp, vp, kn, vn = heads_first(heads, False, *(t[positive] for t in (q, k[:, :length], v[:, :length],
                                                                               k[:, length:], v[:, length:])))
        out = out.clone()
        out[positive] = self.cross_rule(qp, kp, vp, kn, vn, out[positive]).to(out.dtype)
        return out

    # -- Wan: cross-attention of each block ------------------------------------------------------------------------
    def _install_wan(self, to: dict, call: CallState, model) -> None:
        dm = model.diffusion_model
        cross_call = {i: 2 if type(block.cross_attn).__name__ == "WanI2VCrossAttention" else 1
                      for i, block in enumerate(dm.blocks)}
        for layer in self.lmap.layers:
            chain_replace(to, "dit", self.lmap.patch_key(layer), self._wan_block, call, dm, layer.index,
                          cross_call[layer.index])
        to["optimized_attention_override"] = self._wan_override(call, to.get("optimized_attention_override"))

    def _wan_block(self, call: CallState, dm, index: int, cross_index: int, previous):
        """Marks the block (its cross-attention is attention call cross_index) and appends the embedded negative."""
        marker = PerturbedPass.block_marker((index, cross_index), call, previous)

        def block(args, extra):
            context = args["txt"]
            to = args["transformer_options"]
            layout = (tuple(to.get("uuids") or ()), tuple(to.get("cond_or_uncond") or ()), context.shape[0])
            if layout not in call.embedded:     # one embedding per batch layout: ComfyUI may split the conds
                tokens = self._negative_tokens(call, to, context.shape[0],
                                               call.negative.new_zeros(1, 1, call.negative.shape[-1]).to(context.dtype))
                call.embedded[layout] = dm.text_embedding(tokens.to(context.device))
            added = call.embedded["tokens"] = call.embedded[layout].to(context.dtype)
            return marker({**args, "txt": torch.cat([context, added], dim=1)}, extra)
        return block

    def _wan_override(self, call: CallState, previous):
        def override(func, *args, **kwargs):
            to = kwargs.get("transformer_options") or {}
            mine = to.get(CALL_KEY, {}).get(id(self)) is call and call.current is not None
            index = call.calls
            call.calls += 1

            def run(q, k, v):
                new = (q, k, v) + args[3:]
                return previous(func, *new, **kwargs) if previous is not None else func(*new, **kwargs)
            q, k, v, heads, _ = split_attention_args(args, kwargs)
            if not mine or index != call.current[1]:
                return run(q, k, v)
            added = call.embedded["tokens"].shape[1]
            length = k.shape[1] - added
            out = run(q, k[:, :length], v[:, :length])
            return self._cross(call, to, q, k, v, length, heads, out)
        return override

    # -- joint attention -----------------------------------------------------------------------------------------
    def _install_joint(self, to: dict, call: CallState, model) -> None:
        to["optimized_attention_override"] = self._joint_override(call, to.get("optimized_attention_override"))
        if self.lmap.family == "lumina2":
            call.text_calls = len(model.diffusion_model.context_refiner)
            comfy.patcher_extension.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL,
                                                         WRAPPER_KEY, self._lumina_wrapper(call), to)
            return
        for layer in self.lmap.layers:
            chain_replace(to, "dit", self.lmap.patch_key(layer), PerturbedPass.block_marker, layer, call)

    def _lumina_wrapper(self, call: CallState):
        """Lumina2 has no block patches: its attention calls are counted per forward (text refiner, image refiner,
        then one per joint layer); the hook layer's wrapper records its text and image lengths (both padded to a
        multiple of pad_tokens_multiple)."""
        record = PerturbedPass.lumina_wrapper(call)

        def wrapper(executor, *args, **kwargs):
            call.current = "lumina2"
            try:
                return record(executor, *args, **kwargs)
            finally:
                call.current = None
        return wrapper

    def _mine(self, call: CallState, to: dict) -> str | None:
        """'joint' for a joint attention call this hook guides, 'text' for Lumina2's text refiner, else None."""
        index = call.calls
        call.calls += 1
        if to.get(CALL_KEY, {}).get(id(self)) is not call or call.current is None:
            return None
        if self.lmap.family != "lumina2":
            return "joint" if index == 0 else None
        if index < call.text_calls:
            return "text"
        return "joint" if index >= self.lmap.refiner_calls else None

    def _joint_override(self, call: CallState, previous):
        def override(func, *args, **kwargs):
            to = kwargs.get("transformer_options") or {}
            mine = self._mine(call, to)
            normal = previous(func, *args, **kwargs) if previous is not None else func(*args, **kwargs)
            if mine is None:
                return normal
            q, k, v, heads, mask = split_attention_args(args, kwargs)
            canonical = kwargs.get("skip_reshape", False)
            keep = kwargs.get("skip_output_reshape", False)
            positive, samples, negative, anchor = call.rows(to, q.shape[0])
            if not positive:
                return normal
            if not self.inline_copies and len(negative) <= max(samples):
                raise RuntimeError(f"{self.owner}: a joint attention call has positive rows but not their negative "
                                   "rows (another patch changed the batch after the negative-row wrapper)")
            q, k, v = heads_first(heads, canonical, q, k, v)
            n = q.shape[2]
            if mine == "text":
                return self._mask_negative_padding(call, q, k, v, negative, normal, keep)
            text, image = joint_slices(n, call.text_len, self.lmap.text_first, call.image_len)
            mask = mask_rows(additive_mask(mask, q.dtype), positive, q.shape[0])
            if not self.inline_copies and call.negative_len < call.context_len:
                pad = call.padding_mask(n, text.start, q)
                mask = pad if mask is None else mask + pad
            negative_of = [] if self.inline_copies else [negative[s] for s in samples]
            rows = JointRows(q, k, v, text, image, positive, negative_of,
                             [anchor.get(s) == r for r, s in zip(positive, samples)], call.negative_len, mask)
            flat = normal if not keep else heads_last(normal)
            call.hits += 1
            out = self.joint_rule(rows, flat)
            return out if not keep else heads_first(heads, False, out)[0]
        return override

    def _mask_negative_padding(self, call: CallState, q, k, v, negative: dict, normal, keep: bool):
        """Lumina2's text refiner: the negative rows attend without their padding tokens."""
        if call.negative_len >= call.context_len or not negative:
            return normal
        rows = list(negative.values())
        pad = call.padding_mask(q.shape[2], 0, q)
        out = normal.clone()
        fixed = attend(q[rows], k[rows], v[rows], pad)
        out[rows] = (fixed if keep else heads_last(fixed)).to(out.dtype)
        return out
