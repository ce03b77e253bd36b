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

import torch

import comfy.model_patcher
import comfy.patcher_extension
import comfy.sampler_helpers
import comfy.utils

from ..core.run_state import SharedPatch, run_state, sample_with_conds
from ..core.run_steps import check_run, round_down
from .families.base import TextEntry
from .layers import LayerMap
from .negative_call import CALL_KEY, CallState, CrossRule, JointRule
from .negative_cross import CrossEntry
from .negative_joint import WRAPPER_KEY, JointEntry
from .negative_row import NegativeRows, install_outermost


def installed(patcher) -> list[NegativeContext]:
    """The negative-context hooks (NAG, VSF) already installed on a ModelPatcher, outermost first."""
    wrappers = patcher.get_wrappers(comfy.patcher_extension.WrappersMP.CALC_COND_BATCH, WRAPPER_KEY)
    return [w.__self__ for w in wrappers if isinstance(getattr(w, "__self__", None), NegativeContext)]


class NegativeContext(SharedPatch, CrossEntry, JointEntry):
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
        return self.lmap.family.text_entry is TextEntry.JOINT

    def install(self, patcher) -> None:
        patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, WRAPPER_KEY, self._outer)
        patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.CALC_COND_BATCH, WRAPPER_KEY, self._batch)

    def _outer(self, executor, *args, **kwargs):
        run_state(executor.class_obj.model_options, self)["uuid"] = uuid.uuid4()
        return sample_with_conds(executor, self, self.cond_key, comfy.sampler_helpers.convert_cond(self.negative),
                                 *args, **kwargs)

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
        own = encoded[0]["model_conds"]
        call.extra = {key: own[key].cond for key in self.lmap.family.negative_conds if key in own}
        options = comfy.model_patcher.create_model_options_clone(model_options)
        transformer_options = options.setdefault("transformer_options", {})
        transformer_options[CALL_KEY] = {**transformer_options.get(CALL_KEY, {}), id(self): call}
        if self.joint and self.inline_copies:
            conds = list(conds)
            for i in chunks:
                conds[i] = [self._inline(entry, call) for entry in conds[i]]
            self._install_joint(transformer_options, call, model)
        elif self.joint:
            install_outermost(transformer_options, NegativeRows(call, len(conds), self.owner))
            self._install_joint(transformer_options, call, model)
        elif self.lmap.family.text_entry is TextEntry.CROSS_ATTENTION:
            self._install_attn2(transformer_options, call)
        elif self.lmap.family.text_entry is TextEntry.BLOCK_CROSS_ATTENTION:
            self._install_block_cross(transformer_options, call, model)
        out = executor(model, list(conds), x, timestep, options)
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
