"""FasterCache CFG-Cache (Lv et al., arXiv 2410.19355): run the uncond pass only every few steps and rebuild it in
between from the cond output and the cached low/high-frequency uncond-cond deltas.

Follows diffusers' FasterCacheDenoiserHook (the denoiser-level part of FasterCache; the attention-output cache is a
separate method). Timestep ranges are on diffusers' 0-1000 scale, computed from ComfyUI's sigma: the DDPM timestep of
discrete eps/v models (model_sampling.timestep), 1000 * sigma for flow models (FlowMatch schedulers' timestep), and
1000 * (1 - progress) for any other sampling type (EDM-style, where diffusers has no such scale).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..core.cfg_cache import estimate_uncond, frequency_deltas
from ..core.run_steps import check_run, listed
from .main_call import UncondEstimate
from .schedule import diffusers_timestep


@dataclass(frozen=True)
class TimestepRange:
    """An open interval (low, high) of diffusers timesteps, as in FasterCacheConfig."""
    low: float
    high: float

    def __contains__(self, t: float) -> bool:
        return self.low < t < self.high


NAME = "FasterCache CFG-Cache (Guidance Zoo)"


class CFGCache(UncondEstimate):
    """Full cond+uncond on model call 0, every `full_every`-th call and outside `skip_range`; otherwise the uncond
    pass is not run. Deltas live in model-output space (eps, v or flow velocity), per sample and per frame; on each
    skipped call they are scaled (compounding) by alpha_low / alpha_high when the timestep is in their range."""

    def __init__(self, full_every: int, skip_range: TimestepRange, alpha_low: float, low_range: TimestepRange,
                 alpha_high: float, high_range: TimestepRange):
        self.full_every, self.skip_range = full_every, skip_range
        self.alpha_low, self.low_range = alpha_low, low_range
        self.alpha_high, self.high_range = alpha_high, high_range

    def estimating(self, step, state):
        check_run(step.model_options, self, lambda sigmas: self.idle_message(step, sigmas))
        step.t = diffusers_timestep(step.model, step.timestep, step.model_options)
        deltas = state.get("deltas")
        return (self.full_every > 1 and step.call > 0 and step.call % self.full_every != 0 and step.t in self.skip_range
                and deltas is not None and deltas[0].shape == step.x.shape)

    def idle_message(self, step, sigmas: list[float]) -> str | None:
        """None when a step (taken as one call each, as with Euler) may skip; else the warning with a
        skip_below_timestep that lets the latest eligible step skip."""
        if self.full_every == 1:
            return None
        times = [diffusers_timestep(step.model, torch.tensor([s]), step.model_options) for s in sigmas]
        eligible = [t for i, t in enumerate(times) if i % self.full_every]
        if any(t in self.skip_range for t in eligible):
            return None
        hint = f"try skip_below_timestep {math.floor(min(eligible)) + 1}" if eligible else \
            "a 1-step run always runs full CFG"
        return (f"{NAME}: no step of this {len(sigmas)}-step schedule (timesteps {listed(times)}) is below "
                f"skip_below_timestep {self.skip_range.high:g} between full steps, so no uncond pass is skipped; "
                f"{hint}")

    def observe(self, step, out, state):
        if self.full_every > 1:
            state["deltas"] = frequency_deltas(step.to_output(out[0]), step.to_output(out[1]))

    def estimate(self, step, cond_out, state):
        delta_low, delta_high = state["deltas"]
        if step.t in self.low_range:
            delta_low = delta_low * self.alpha_low
        if step.t in self.high_range:
            delta_high = delta_high * self.alpha_high
        state["deltas"] = (delta_low, delta_high)
        return estimate_uncond(cond_out, delta_low, delta_high)
