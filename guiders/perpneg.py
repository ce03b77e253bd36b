"""Perp-Neg (arXiv 2304.04968) guider: positive, negative and empty conds in one batched model call, per sample."""
import math

import comfy.samplers
import node_helpers

from ..core.perpneg import perpneg_denoised


class PerpNegGuider(comfy.samplers.CFGGuider):
    """Like ComfyUI's PerpNegGuider, but the projection is taken per sample (theirs sums over the whole batch)."""

    def set_conds(self, positive: list, negative: list, empty: list) -> None:
        empty = node_helpers.conditioning_set_values(empty, {"prompt_type": "negative"})
        self.inner_set_conds({"positive": positive, "negative": negative, "empty_negative_prompt": empty})

    def set_cfg(self, cfg: float, neg_scale: float = 1.0) -> None:
        self.cfg, self.neg_scale = cfg, neg_scale

    def predict_noise(self, x, timestep, model_options={}, seed=None):
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
