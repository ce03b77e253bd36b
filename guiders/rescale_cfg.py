"""Rescale CFG (arXiv 2305.08891) in v space for eps/v models and in velocity space for flow models."""
from ..core.rescale_cfg import rescale_cfg
from ..core.spaces import from_model_output, to_model_output
from .combine import CombineRule, Step


class RescaleCFGRule(CombineRule):
    name = "Rescale CFG (Guidance Zoo)"

    def __init__(self, multiplier: float):
        self.multiplier = multiplier

    def guided(self, step: Step):
        space = "flow" if step.prediction == "flow" else "v"
        cond = to_model_output(step.x, step.cond, step.sigma, space)
        uncond = to_model_output(step.x, step.uncond, step.sigma, space)
        guided = rescale_cfg(cond, uncond + step.scale * (cond - uncond), self.multiplier)
        return from_model_output(step.x, guided, step.sigma, space)
