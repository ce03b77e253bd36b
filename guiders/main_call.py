"""Chainable wrappers that act on ComfyUI's cond/uncond model call of each sampling step.

A PREDICT_NOISE wrapper arms the run's state at every model step; the CALC_COND_BATCH wrapper hands the first
calc_cond_batch of that step to main_call() if it is the cond/uncond call (two or more conds, the first one
positive). Any other first call disarms it. Both are wrappers, so several hooks (ours and other packs') chain,
and no exclusive slot (`sampler_calc_cond_batch_function`, `model_function_wrapper`) is taken.
"""
import torch

import comfy.patcher_extension

from ..core.spaces import from_model_output, to_model_output
from .combine import prediction_type
from ..core.run_state import SharedPatch, run_state

WRAPPER_KEY = "guidance_zoo_main_call"


class MainCallHook(SharedPatch):
    step_keys: tuple[str, ...] = ()

    def install(self, patcher) -> None:
        patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.PREDICT_NOISE, WRAPPER_KEY, self._arm)
        patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.CALC_COND_BATCH, WRAPPER_KEY, self._batch)

    def _arm(self, executor, x, timestep, model_options, seed=None):
        state = run_state(model_options, self)
        state["armed"] = True
        try:
            return executor(x, timestep, model_options, seed)
        finally:
            for key in ("armed",) + self.step_keys:
                state.pop(key, None)

    def _batch(self, executor, model, conds, x, timestep, model_options):
        state = run_state(model_options, self)
        if not state.pop("armed", False) or len(conds) < 2 or conds[0] is None:
            return executor(model, conds, x, timestep, model_options)
        return self.main_call(executor, model, list(conds), x, timestep, model_options, state)

    def main_call(self, executor, model, conds: list, x, timestep, model_options: dict, state: dict) -> list:
        raise NotImplementedError

    def kept(self, model_options: dict) -> tuple:
        """What main_call kept for this step under step_keys (None where the step's call was not ours), taken out of
        the state; also disarms the step, so a pass the caller then runs on its own is not taken for the step's call."""
        state = run_state(model_options, self)
        state.pop("armed", None)
        return tuple(state.pop(key, None) for key in self.step_keys)


def without_uncond(executor, model, conds: list, x, timestep, model_options: dict) -> list:
    """The step's call with its uncond pass dropped; the uncond output is the cond output until the caller sets it."""
    out = executor(model, [conds[0], None] + conds[2:], x, timestep, model_options)
    out[1] = out[0]
    return out


class UncondSkip(MainCallHook):
    """Drops the uncond pass of a step when skip(model_options, sigma) says so; the uncond output then equals the
    cond output, so ComfyUI's CFG (and every rule after it) gives the cond prediction at one model evaluation."""

    def __init__(self, skip):
        self.skip = skip

    def main_call(self, executor, model, conds, x, timestep, model_options, state):
        if conds[1] is None or not self.skip(model_options, timestep):
            return executor(model, conds, x, timestep, model_options)
        return without_uncond(executor, model, conds, x, timestep, model_options)


class EstimateStep:
    """One cond/uncond call seen by an UncondEstimate: its index in the run and the estimator's space (a model-output
    space, or "denoised" for estimators that work on the denoised prediction itself)."""

    def __init__(self, call: int, model, x: torch.Tensor, sigma: torch.Tensor, model_options: dict, space: str):
        self.call, self.model, self.model_options, self.space = call, model, model_options, space
        self.timestep, self.x, self.sigma = sigma, x.float(), sigma.float()

    def to_output(self, denoised: torch.Tensor) -> torch.Tensor:
        if self.space == "denoised":
            return denoised.float()
        return to_model_output(self.x, denoised.float(), self.sigma, self.space)

    def from_output(self, output: torch.Tensor) -> torch.Tensor:
        if self.space == "denoised":
            return output
        return from_model_output(self.x, output, self.sigma, self.space)


class UncondEstimate(MainCallHook):
    """The savers that skip the uncond pass on some calls and put an estimate in its place (FasterCache, LinearAG,
    RCFG). Calls without an uncond (cfg 1) are left alone and not counted; on the others, estimating() decides:
    False runs cond and uncond and hands both to observe(); True runs the cond alone and estimate() gives the uncond
    in the estimator's space (eps/v/flow velocity by default, or "denoised"), converted back to a denoised
    prediction."""

    def space(self, model) -> str:
        return prediction_type(model)

    def estimating(self, step: EstimateStep, state: dict) -> bool:
        raise NotImplementedError

    def observe(self, step: EstimateStep, out: list, state: dict) -> None:
        """A call that ran the real uncond pass."""

    def estimate(self, step: EstimateStep, cond_out: torch.Tensor, state: dict) -> torch.Tensor:
        raise NotImplementedError

    def main_call(self, executor, model, conds, x, timestep, model_options, state):
        if conds[1] is None:
            return executor(model, conds, x, timestep, model_options)
        call = state.get("calls", 0)
        state["calls"] = call + 1
        step = EstimateStep(call, model, x, timestep, model_options, self.space(model))
        if not self.estimating(step, state):
            out = executor(model, conds, x, timestep, model_options)
            self.observe(step, out, state)
            return out
        out = without_uncond(executor, model, conds, x, timestep, model_options)
        out[1] = step.from_output(self.estimate(step, step.to_output(out[0]), state)).to(out[0].dtype)
        return out
