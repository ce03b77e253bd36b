"""Dynamic thresholding (Imagen, arXiv 2205.11487) on latents, against the range of a lower-CFG reference."""
import torch

from ..core.dynamic_thresholding import dynamic_threshold, percentile_range
from .combine import CombineRule, Step


class DynamicThresholdingRule(CombineRule):
    name = "Dynamic Thresholding (Guidance Zoo)"

    def __init__(self, percentile: float, mimic_scale: float):
        self.percentile, self.mimic_scale = percentile, mimic_scale

    def guided(self, step: Step):
        guided = step.uncond + step.scale * (step.cond - step.uncond)
        if self.mimic_scale > 0:
            reference = percentile_range(step.uncond + self.mimic_scale * (step.cond - step.uncond), self.percentile)
        else:
            reference = torch.ones(guided.shape[:2] + (1,), device=guided.device)
        return dynamic_threshold(guided, reference, self.percentile)
