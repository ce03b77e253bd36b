"""The negative-context hook on joint attention (SD3, Flux, Flux2, Chroma, Qwen-Image, Lumina2): in every joint
attention call of a chosen model call, the positive rows and their negative rows are handed to the joint rule (NAG:
the negative as its own batch row; VSF: the negative appended inline to the positive prompt)."""
from __future__ import annotations

import comfy.patcher_extension

from ..core.attention import additive_mask
from .families.base import AttentionReach
from .hook import PerturbedPass, chain_override, chain_replace
from .negative_call import CALL_KEY, CallState, JointRows, attend
from .pass_state import count_generated
from .tokens import heads_first, heads_last, joint_slices, mask_rows, reference_slice, split_attention_args

WRAPPER_KEY = "guidance_zoo_negative_context"


class JointEntry:
    """NegativeContext's joint-attention half (it supplies lmap, owner, joint_rule, inline_copies)."""

    def _install_joint(self, transformer_options: dict, call: CallState, model) -> None:
        chain_override(transformer_options, lambda previous: self._joint_override(call, previous))
        if self.lmap.family.attention_reach is AttentionReach.CALL_COUNT:
            call.text_calls = self.lmap.family.text_refiner_calls(model.diffusion_model)
            comfy.patcher_extension.add_wrapper_with_key(self.lmap.family.forward_wrapper, WRAPPER_KEY,
                                                         self._counted_forward(call), transformer_options)
            return
        count_generated(self.lmap.family, call, transformer_options)
        for layer in self.lmap.layers:
            chain_replace(transformer_options, "dit", self.lmap.patch_key(layer), PerturbedPass.block_marker, layer,
                          call)

    def _counted_forward(self, call: CallState):
        """CALL_COUNT families (Lumina2) have no block patches: their attention calls are counted per forward (text
        refiner, image refiner, then one per joint layer); the hook layer's wrapper records the text and image
        lengths."""
        record = PerturbedPass.call_counter(self.lmap, call)

        def wrapper(executor, *args, **kwargs):
            call.current = "counted"
            try:
                return record(executor, *args, **kwargs)
            finally:
                call.current = None
        return wrapper

    def _call_kind(self, call: CallState, transformer_options: dict) -> str | None:
        """'joint' for a joint attention call this hook guides, 'text' for Lumina2's text refiner, else None."""
        index = call.calls
        call.calls += 1
        if transformer_options.get(CALL_KEY, {}).get(id(self)) is not call or call.current is None:
            return None
        if self.lmap.family.attention_reach is not AttentionReach.CALL_COUNT:
            return "joint" if index == 0 else None
        if index < call.text_calls:
            return "text"
        return "joint" if index >= self.lmap.refiner_calls else None

    def _joint_override(self, call: CallState, previous):
        def override(func, *args, **kwargs):
            transformer_options = kwargs.get("transformer_options") or {}
            mine = self._call_kind(call, transformer_options)
            normal = previous(func, *args, **kwargs) if previous is not None else func(*args, **kwargs)
            if mine is None:
                return normal
            q, k, v, heads, mask = split_attention_args(args, kwargs)
            canonical = kwargs.get("skip_reshape", False)
            keep = kwargs.get("skip_output_reshape", False)
            positive, samples, negative, anchor = call.rows(transformer_options, q.shape[0])
            if not positive:
                return normal
            if not self.inline_copies and len(negative) <= max(samples):
                raise RuntimeError(f"{self.owner}: a joint attention call has positive rows but not their negative "
                                   "rows (another patch changed the batch after the negative-row wrapper)")
            q, k, v = heads_first(heads, canonical, q, k, v)
            n = q.shape[2]
            if mine == "text":
                return self._mask_negative_padding(call, q, k, v, negative, normal, keep)
            # edit models: the reference tokens are neither text nor image here (their rows keep normal's output)
            refs = reference_slice(n, call.text_len, self.lmap.text_first, call.generated_len)
            text, image = joint_slices(n, call.text_len, self.lmap.text_first,
                                       call.image_len if refs is None else call.generated_len)
            mask = mask_rows(additive_mask(mask, q.dtype), positive, q.shape[0])
            if not self.inline_copies and call.negative_len < call.context_len:
                pad = call.padding_mask(n, self.lmap.family.prompt_start(text, call.context_len), q)
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
