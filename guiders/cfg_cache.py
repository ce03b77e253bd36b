"""FasterCache CFG-Cache (Lv et al., arXiv 2410.19355): run the uncond pass only every few steps and rebuild it in
between from the cond output and the cached low/high-frequency uncond-cond deltas.

Follows diffusers' FasterCacheDenoiserHook (the denoiser-level part of FasterCache; the attention-output cache is a
separate method). Timestep ranges are on diffusers' 0-1000 scale, computed from ComfyUI's sigma: the DDPM timestep of
discrete eps/v models (model_sampling.timestep), 1000 * sigma for flow models (FlowMatch schedulers' timestep), and
1000 * (1 - progress) for any other sampling type (EDM-style, where diffusers has no such scale).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.cfg_cache import estimate_uncond, frequency_deltas
from ..core.spaces import from_model_output, to_model_output
from .combine import prediction_type
from .main_call import MainCallHook
from .schedule import diffusers_timestep  # noqa: F401  (re-exported)


@dataclass(frozen=True)
class TimestepRange:
    """An open interval (low, high) of diffusers timesteps, as in FasterCacheConfig."""
    low: float
    high: float

    def __contains__(self, t: float) -> bool:
        return self.low < t < self.high


class CFGCache(MainCallHook):
    """Full cond+uncond on model call 0, every `full_every`-th call and outside `skip_range`; otherwise the uncond
    pass is not run. Deltas live in model-output space (eps, v or flow velocity), per sample and per frame; on each
    skipped call they are scaled (compounding) by alpha_low / alpha_high when the timestep is in their range."""

    def __init__(self, full_every: int, skip_range: TimestepRange, alpha_low: float, low_range: TimestepRange,
                 alpha_high: float, high_range: TimestepRange):
        self.full_every, self.skip_range = full_every, skip_range
        self.alpha_low, self.low_range = alpha_low, low_range
        self.alpha_high, self.high_range = alpha_high, high_range

    def main_call(self, executor, model, conds, x, timestep, model_options, state):
        if conds[1] is None:
            return executor(model, conds, x, timestep, model_options)
        iteration = state.get("iteration", 0)
        state["iteration"] = iteration + 1
        prediction = prediction_type(model)
        t = diffusers_timestep(model, timestep, model_options)
        deltas = state.get("deltas")
        skip = (self.full_every > 1 and iteration > 0 and iteration % self.full_every != 0 and t in self.skip_range
                and deltas is not None and deltas[0].shape == x.shape)
        if not skip:
            out = executor(model, conds, x, timestep, model_options)
            if self.full_every > 1:
                xf, sf = x.float(), timestep.float()
                state["deltas"] = frequency_deltas(to_model_output(xf, out[0].float(), sf, prediction),
                                                   to_model_output(xf, out[1].float(), sf, prediction))
            return out
        out = executor(model, [conds[0], None] + conds[2:], x, timestep, model_options)
        delta_low, delta_high = deltas
        if t in self.low_range:
            delta_low = delta_low * self.alpha_low
        if t in self.high_range:
            delta_high = delta_high * self.alpha_high
        state["deltas"] = (delta_low, delta_high)
        xf, sf = x.float(), timestep.float()
        uncond_out = estimate_uncond(to_model_output(xf, out[0].float(), sf, prediction), delta_low, delta_high)
        out[1] = from_model_output(xf, uncond_out, sf, prediction).to(out[0].dtype)
        return out
