"""LinearAG (Castillo et al., arXiv 2312.12487): after a few full CFG steps, the uncond prediction is not computed but
estimated as a linear combination of predictions already at hand, eps_u(t) ~ b1 eps_c(t) + b2 eps_c(t+1) +
b3 eps_u(t+1) (current cond, previous cond, previous uncond estimate), all in model-output space (eps, v or flow
velocity).

The paper fits per-timestep coefficients offline by least squares on calibration trajectories of a fixed
model/sampler/schedule. Here the coefficients are either given (one row for all steps, or one row per step after the
warm-up, the last row repeating) or fitted online: the warm-up steps run full CFG and their (regressors, true uncond)
pairs give a per-sample least-squares fit, used for every later step. The online fit is logged so it can be pasted
into `coefficients` as a calibration.
"""
from __future__ import annotations

import logging

import torch

from ..core.linear_ag import linear_estimate, normal_equations, solve_coefficients
from ..core.run_steps import is_last_step, warn_once
from .main_call import UncondEstimate

NAME = "LinearAG (Guidance Zoo)"


class LinearAG(UncondEstimate):
    """Full CFG on the first `warmup` model calls, then one evaluation per call with a linear uncond estimate."""

    def __init__(self, warmup: int, table: list[tuple[float, float, float]] | None):
        self.warmup, self.table = warmup, table

    def _coefficients(self, state: dict, after_warmup: int, batch: int) -> torch.Tensor | None:
        if self.table is not None:
            row = self.table[min(after_warmup, len(self.table) - 1)]
            return torch.tensor(row, dtype=torch.float64).expand(batch, 3)
        if "fit" not in state:
            if "gram" not in state:
                return None
            state["fit"] = solve_coefficients(state["gram"], state["rhs"])
            logging.info("%s: coefficients fitted on the warm-up steps (cond, previous cond, previous uncond): %s",
                         NAME, "; ".join(", ".join(f"{v:.6g}" for v in row) for row in state["fit"].tolist()))
        return state["fit"]

    def estimating(self, step, state):
        previous = state.get("previous")
        if previous is not None and previous[0].shape != step.x.shape:
            for key in ("previous", "gram", "rhs", "fit"):
                state.pop(key, None)
            previous = None
        step.coefficients = None
        if step.call >= self.warmup and previous is not None:
            step.coefficients = self._coefficients(state, step.call - self.warmup, step.x.shape[0])
        state["saved"] = state.get("saved", False) or step.coefficients is not None
        if not state["saved"] and is_last_step(step.model_options, step.sigma):
            warn_once(step.model_options, self, self.idle_message(step.call + 1))
        return step.coefficients is not None

    def idle_message(self, calls: int) -> str:
        """The warning of a run whose last call came without a saved uncond pass, with a warm-up that saves one."""
        least = 1 if self.table is not None else 2
        hint = f"try warmup_steps {least}" if calls > least else \
            "give 'coefficients' and warmup_steps 1" if calls > 1 else "a 1-step run has nothing to save"
        return (f"{NAME}: warmup_steps {self.warmup} covers all {calls} model calls of this run, so no uncond "
                f"pass was saved; {hint}")

    def observe(self, step, out, state):
        cond_out, uncond_out = step.to_output(out[0]), step.to_output(out[1])
        previous = state.get("previous")
        if previous is not None and self.table is None:
            gram, rhs = normal_equations([cond_out, previous[0], previous[1]], uncond_out)
            if "gram" in state:
                gram, rhs = gram + state["gram"], rhs + state["rhs"]
            state["gram"], state["rhs"] = gram, rhs
        state["previous"] = (cond_out, uncond_out)

    def estimate(self, step, cond_out, state):
        previous = state["previous"]
        uncond_out = linear_estimate([cond_out, previous[0], previous[1]], step.coefficients.to(cond_out.device))
        if not bool(torch.isfinite(uncond_out).all()):
            raise RuntimeError(f"{NAME}: the uncond estimate of model call {step.call} is not finite (the "
                               "coefficients make it grow without bound); use coefficients near 1 (empty fits them)")
        state["previous"] = (cond_out, uncond_out)
        return uncond_out
