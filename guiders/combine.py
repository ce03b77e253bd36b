"""The combine step shared by every CFG-family method.

A rule computes its guided prediction D from (D_c, D_u) and the sampler's position, and is hung on ComfyUI's
pre-CFG list: it rewrites the cond prediction so that ComfyUI's own linear CFG, D_u + w (D_c' - D_u), lands exactly
on D. Rules therefore chain in node order (each sees the pair the previous one left), stay usable from the stock
KSampler, and leave the exclusive `sampler_cfg_function` slot free. At cfg 1 ComfyUI skips the uncond pass; a rule
then does nothing unless it says otherwise (`cond_only`).
"""
from __future__ import annotations

import logging
from functools import cached_property

import torch

from ..core.cfg import cond_for_linear_cfg
from ..core.spaces import from_model_output, to_model_output
from ..core.run_state import SharedPatch, run_state
from ..core.run_steps import progress, sampler_position
from .schedule import Schedule


def prediction_type(model) -> str:
    """'flow' for CONST (rectified-flow) models, 'v' for v-prediction, else 'eps'."""
    import comfy.model_sampling as ms
    sampling = model.model_sampling
    if isinstance(sampling, ms.CONST):
        return "flow"
    if isinstance(sampling, ms.V_PREDICTION) and not isinstance(sampling, ms.EDM):
        return "v"
    return "eps"


class Step:
    """What a rule sees at one model call: predictions in denoised space and where the sampler stands."""

    def __init__(self, args: dict):
        self.cond, self.uncond = args["conds_out"][0], args["conds_out"][1]
        self.x, self.sigma, self.scale = args["input"], args["sigma"], float(args["cond_scale"])
        self.model, self.model_options = args["model"], args["model_options"]

    @cached_property
    def prediction(self) -> str:
        return prediction_type(self.model)

    @cached_property
    def index_and_count(self) -> tuple[int, int]:
        """Index of the current step in the run's schedule and the number of steps (0 of 1 when unknown)."""
        return sampler_position(self.model_options, self.sigma)

    @property
    def progress(self) -> float:
        """0 at the first (noisiest) step, 1 at the last."""
        return progress(self.model_options, self.sigma)

    def to_output(self, denoised: torch.Tensor) -> torch.Tensor:
        return to_model_output(self.x, denoised, self.sigma, self.prediction)

    def from_output(self, output: torch.Tensor) -> torch.Tensor:
        return from_model_output(self.x, output, self.sigma, self.prediction)


class CombineRule(SharedPatch):
    """Base of the combine-step rules; subclasses implement guided() (or rewrite() for rules that edit a branch).

    An optional Guidance Schedule (`scale_schedule`, the node's scale_schedule input) modulates the rule's guidance:
    D = D_c + f(t) (D_rule - D_c), D_c the cond the rule received and D_rule what ComfyUI's CFG gives from the rule's
    pair; f = 1 leaves the rule as is, f = 0 (outside the schedule's sigma interval) gives the cond prediction."""

    name = "Guidance Zoo rule"
    scale_schedule: Schedule | None = None

    def install(self, patcher) -> None:
        patcher.set_model_sampler_pre_cfg_function(self)

    def guided(self, step: Step) -> torch.Tensor:
        raise NotImplementedError

    def rewrite(self, step: Step) -> tuple[torch.Tensor, torch.Tensor]:
        """(cond', uncond') for ComfyUI's linear CFG; by default landing on guided()."""
        target = self.guided(step)
        if abs(step.scale) < 1e-6:
            return target, target
        return cond_for_linear_cfg(target, step.uncond, step.scale), step.uncond

    def cond_only(self, args: dict) -> list:
        """What to do when ComfyUI ran no uncond pass (cfg 1): nothing by default."""
        return args["conds_out"]

    def state(self, step: Step) -> dict:
        return run_state(step.model_options, self)

    def __call__(self, args: dict) -> list:
        conds_out = args["conds_out"]
        if len(conds_out) < 2 or args["conds"][1] is None:
            return self.cond_only(args)
        step = Step(args)
        state = self.state(step)
        if "sampler_cfg_function" in step.model_options and not state.get("warned"):
            state["warned"] = True
            logging.warning("%s: another node replaced ComfyUI's CFG function; this rule assumes ComfyUI's linear "
                            "CFG combine, so its result will be off. Remove that node or apply this one alone.",
                            self.name)
        cond, uncond = self.rewrite(step)
        if self.scale_schedule is not None:
            cond, uncond = self.scheduled(step, cond, uncond)
        return [cond, uncond] + list(conds_out[2:])

    def scheduled(self, step: Step, cond: torch.Tensor, uncond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The rule's pair with its guidance scaled by the schedule's factor at this step."""
        factor = self.scale_schedule.factor(step.model_options, step.sigma)
        if factor == 1.0:
            return cond, uncond
        guided = uncond + step.scale * (cond - uncond)
        target = step.cond + factor * (guided - step.cond)
        if abs(step.scale) < 1e-6:
            return target, target
        return cond_for_linear_cfg(target, uncond, step.scale), uncond
