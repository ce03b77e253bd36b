"""Perp-Neg (arXiv 2304.04968): a guider (positive, negative, empty in one batched call) and a post-CFG model patch."""
import math

import comfy.patcher_extension
import comfy.sampler_helpers
import comfy.samplers
import node_helpers

from ..core.perpneg import perpneg_denoised
from ..core.run_state import SharedPatch, run_state, sample_with_conds

WRAPPER_KEY = "guidance_zoo_perpneg"


class PerpNegGuider(comfy.samplers.CFGGuider):
    """Like ComfyUI's PerpNegGuider, but the projection is taken per sample (theirs sums over the whole batch)."""

    def set_conds(self, positive: list, negative: list, empty: list) -> None:
        empty = node_helpers.conditioning_set_values(empty, {"prompt_type": "negative"})
        self.inner_set_conds({"positive": positive, "negative": negative, "empty_negative_prompt": empty})

    def set_cfg(self, cfg: float, neg_scale: float = 1.0) -> None:
        self.cfg, self.neg_scale = cfg, neg_scale

    def predict_noise(self, x, timestep, model_options=None, seed=None):
        if model_options is None:
            model_options = {}
        positive = self.conds.get("positive", None)
        negative = self.conds.get("negative", None)
        empty = self.conds.get("empty_negative_prompt", None)
        if not model_options.get("disable_cfg1_optimization", False) and math.isclose(self.neg_scale, 0.0):
            negative = None  # D = D_empty + cfg (D_c - D_empty): the negative is not needed
            if math.isclose(self.cfg, 1.0):
                empty = None  # D = D_c
        conds = [positive, negative, empty]
        out = comfy.samplers.calc_cond_batch(self.inner_model, conds, x, timestep, model_options)
        for fn in model_options.get("sampler_pre_cfg_function", []):
            out = fn({"conds": conds, "conds_out": out, "cond_scale": self.cfg, "timestep": timestep, "input": x,
                      "sigma": timestep, "model": self.inner_model, "model_options": model_options})
        d_pos, d_neg, d_empty = out
        if empty is None:
            result = d_pos
        else:
            result = perpneg_denoised(d_pos, d_neg, d_empty, self.cfg, 0.0 if negative is None else self.neg_scale)
        # Post-CFG functions see the empty prompt as the unconditional branch: it is Perp-Neg's baseline (CFG++
        # renoises with it); the negative's prediction comes as negative_denoised.
        for fn in model_options.get("sampler_post_cfg_function", []):
            result = fn({"denoised": result, "cond": positive, "uncond": empty, "cond_scale": self.cfg,
                         "model": self.inner_model, "uncond_denoised": d_empty, "cond_denoised": d_pos,
                         "sigma": timestep, "model_options": model_options, "input": x,
                         "negative_cond": negative, "negative_denoised": d_neg,
                         "empty_cond": empty, "empty_cond_denoised": d_empty})
        return result


class PerpNegPostCFG(SharedPatch):
    """Perp-Neg for the stock KSampler: the run's positive and negative come from ComfyUI's cond/uncond call, the
    empty prompt from one extra call; replaces the CFG result (later post-CFG patches chain on top). The empty prompt
    joins the sampler's conds at the start of each run (OUTER_SAMPLE wrapper), so ComfyUI encodes it as it encodes
    the negative: with the run's latent image, mask and stream layout (i2v concat latents, LTX-2's packed streams)."""

    def __init__(self, empty: list, neg_scale: float, node: str):
        self.empty, self.neg_scale, self.node = empty, neg_scale, node
        self.cond_key = f"guidance_zoo_perpneg_empty_{id(self)}"

    def install(self, patcher) -> None:
        patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.OUTER_SAMPLE, WRAPPER_KEY, self._outer)
        patcher.set_model_sampler_post_cfg_function(self, disable_cfg1_optimization=True)

    def _outer(self, executor, *args, **kwargs):
        empty = node_helpers.conditioning_set_values(self.empty, {"prompt_type": "negative"})
        return sample_with_conds(executor, self, self.cond_key, comfy.sampler_helpers.convert_cond(empty),
                                 *args, **kwargs)

    def __call__(self, args: dict):
        if args.get("uncond") is None:
            raise RuntimeError(f"{self.node}: Perp-Neg needs the KSampler's negative conditioning, but this run has "
                               "none. Connect a negative prompt.")
        empty = (run_state(args["model_options"], self).get("conds") or {}).get(self.cond_key)
        if not empty:
            raise RuntimeError(f"{self.node}: the model was called outside a sampler run (no empty prompt); sample "
                               "it through KSampler, SamplerCustom(Advanced) or a CFGGuider")
        (d_empty,) = comfy.samplers.calc_cond_batch(args["model"], [empty], args["input"], args["sigma"],
                                                    args["model_options"])
        return perpneg_denoised(args["cond_denoised"], args["uncond_denoised"], d_empty, args["cond_scale"],
                                self.neg_scale)
