"""The negative-context hook where the prompt enters through cross-attention: UNets (attn2: an attn2_patch appends
the negative tokens to the context before the k/v projections, a replace splits K/V back into [K+, K-]) and Wan
(a block wrapper appends the negative, embedded by the model's own text embedding, to each block's context; the
block's cross-attention call is split the same way). Rows that are not the positive cond attend to K+ only."""
from __future__ import annotations

import torch

import comfy.patcher_extension
import comfy.utils

from .families.base import AttentionReach
from .hook import PerturbedPass, chain_override, chain_replace, plain_attention
from .negative_call import CALL_KEY, CallState
from .tokens import heads_first, heads_last, split_attention_args

EXTENDED = "guidance_zoo_negative_tokens"


class CrossEntry:
    """NegativeContext's cross-attention half (it supplies lmap, cross_rule)."""

    def _install_attn2(self, transformer_options: dict, call: CallState) -> None:
        patches = transformer_options.setdefault("patches", {})
        patches["attn2_patch"] = list(patches.get("attn2_patch", [])) + [self._append_tokens(call)]
        for layer in self.lmap.layers:
            chain_replace(transformer_options, "attn2", self.lmap.patch_key(layer), self._attn2_replace, call)

    def _negative_tokens(self, call: CallState, transformer_options: dict, batch: int,
                         like: torch.Tensor) -> torch.Tensor:
        """(batch, L-, C): each positive row's negative (per sample), zeros for the other rows."""
        positive, samples, _, _ = call.rows(transformer_options, batch)
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

    def _attn2_replace(self, call: CallState, previous):
        def replace(q, k, v, extra_options):
            added = extra_options.get(EXTENDED, 0)
            length = k.shape[1] - added
            k_pos, v_pos = k[:, :length], v[:, :length]
            out = (previous or plain_attention)(q, k_pos, v_pos, extra_options)
            if not added:
                return out
            return self._cross(call, extra_options, q, k, v, length, extra_options["n_heads"], out)
        return replace

    def _cross(self, call: CallState, transformer_options: dict, q, k, v, length: int, heads: int,
               out: torch.Tensor, canonical: bool = False, keep: bool = False) -> torch.Tensor:
        """Apply the cross rule to the positive rows; q, k, v (B, N, H*D), or (B, H, N, D) when canonical
        (skip_reshape), with k/v = [K+, K-]; out (B, N, H*D), or (B, H, N, D) when keep (skip_output_reshape)."""
        positive, _, _, _ = call.rows(transformer_options, q.shape[0])
        if not positive:
            return out
        call.hits += 1
        n = 2 if canonical else 1
        rest = k.shape[n] - length
        qp, kp, vp, kn, vn = heads_first(heads, canonical, *(t[positive] for t in (
            q, k.narrow(n, 0, length), v.narrow(n, 0, length), k.narrow(n, length, rest), v.narrow(n, length, rest))))
        out = (heads_last(out) if keep else out).clone()
        out[positive] = self.cross_rule(qp, kp, vp, kn, vn, out[positive]).to(out.dtype)
        return heads_first(heads, False, out)[0] if keep else out

    def _install_block_cross(self, transformer_options: dict, call: CallState, model) -> None:
        dm = model.diffusion_model
        if self.lmap.family.attention_reach is AttentionReach.CALL_COUNT:
            self._install_counted_cross(transformer_options, call, dm)
            return
        blocks = getattr(dm, getattr(self.lmap.family, "blocks_attribute", "blocks"))
        cross_call = {i: self.lmap.family.cross_call_index(block) for i, block in enumerate(blocks)}
        for layer in self.lmap.layers:
            chain_replace(transformer_options, "dit", self.lmap.patch_key(layer), self._block_cross_marker, call, dm,
                          layer.index,
                          cross_call[layer.index])
        chain_override(transformer_options, lambda previous: self._block_cross_override(call, previous))

    def _block_cross_marker(self, call: CallState, dm, index: int, cross_index: int, previous):
        """Marks the block (its cross-attention is attention call cross_index) and appends the embedded negative."""
        marker = PerturbedPass.block_marker((index, cross_index), call, previous)

        def block(args, extra):
            key = self.lmap.family.block_text
            context = args[key]
            added = self._embedded_negative(call, dm, context, args["transformer_options"], args)
            return marker({**args, key: torch.cat([context, added], dim=1)}, extra)
        return block

    def _embedded_negative(self, call: CallState, dm, context: torch.Tensor, transformer_options: dict,
                           block_args: dict | None = None):
        """The embedded negative tokens appended to each row of a text context (block_args: the "dit" block's)."""
        layout = (tuple(transformer_options.get("uuids") or ()),
                  tuple(transformer_options.get("cond_or_uncond") or ()), context.shape[0])
        if layout not in call.embedded:     # one embedding per batch layout: ComfyUI may split the conds
            tokens = self._negative_tokens(call, transformer_options, context.shape[0],
                                           call.negative.new_zeros(1, 1, call.negative.shape[-1]).to(context.dtype))
            call.embedded[layout] = self.lmap.family.embed_block_text(dm, tokens.to(context.device),
                                                                      block_args or {})
        added = call.embedded["tokens"] = call.embedded[layout].to(context.dtype)
        return added

    def _install_counted_cross(self, transformer_options: dict, call: CallState, dm) -> None:
        """No block patches (Cosmos Predict2): a diffusion-model wrapper appends the negative to the context every
        block attends to and restarts the call count; the adapter tells which counted calls are cross-attention."""
        def wrapper(executor, *args, **kwargs):
            module = self.lmap.family.context_module(executor.class_obj)
            if module is not None:
                return self._hooked_context(call, dm, module, executor, args, kwargs)
            context = args[2] if len(args) > 2 else kwargs["context"]
            context = torch.cat([context, self._embedded_negative(call, dm, context,
                                                                  kwargs.get("transformer_options") or {})], dim=1)
            if len(args) > 2:
                args = args[:2] + (context,) + args[3:]
            else:
                kwargs = {**kwargs, "context": context}
            call.calls = 0
            return executor(*args, **kwargs)
        comfy.patcher_extension.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, EXTENDED,
                                                     wrapper, transformer_options)
        family, lmap = self.lmap.family, self.lmap
        chain_override(transformer_options, lambda previous: self._block_cross_override(
            call, previous, lambda index: family.counted_cross_layer(index, lmap) is not None))

    def _hooked_context(self, call: CallState, dm, module: torch.nn.Module, executor, args: tuple, kwargs: dict):
        """The forward, with a forward hook (for this call only) appending the embedded negative to the output of
        the module that makes the blocks' text context."""
        def append(hooked, hook_args: tuple, hook_kwargs: dict, output: torch.Tensor) -> torch.Tensor:
            options = hook_kwargs.get("transformer_options") or {}
            added = self._embedded_negative(call, dm, output, options, {"args": hook_args, "kwargs": hook_kwargs})
            return torch.cat([output, added], dim=1)
        handle = module.register_forward_hook(append, with_kwargs=True)
        call.calls = 0
        try:
            return executor(*args, **kwargs)
        finally:
            handle.remove()

    def _block_cross_override(self, call: CallState, previous, counted=None):
        """counted(index): whether the forward's index-th call is a cross-attention (CALL_COUNT families)."""
        def override(func, *args, **kwargs):
            transformer_options = kwargs.get("transformer_options") or {}
            mine = (transformer_options.get(CALL_KEY, {}).get(id(self)) is call
                    and (counted is not None or call.current is not None))
            index = call.calls
            call.calls += 1

            def run(q, k, v):
                new = (q, k, v) + args[3:]
                return previous(func, *new, **kwargs) if previous is not None else func(*new, **kwargs)
            q, k, v, heads, _ = split_attention_args(args, kwargs)
            if not mine or not (counted(index) if counted is not None else index == call.current[1]):
                return run(q, k, v)
            canonical, keep = kwargs.get("skip_reshape", False), kwargs.get("skip_output_reshape", False)
            n = 2 if canonical else 1           # the tokens dim (Kandinsky 5 passes (B, H, N, D))
            length = k.shape[n] - call.embedded["tokens"].shape[1]
            out = run(q, k.narrow(n, 0, length), v.narrow(n, 0, length))
            return self._cross(call, transformer_options, q, k, v, length, heads, out, canonical, keep)
        return override
