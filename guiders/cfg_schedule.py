"""CFG weight schedules (arXiv 2404.13040) and the guidance interval (arXiv 2404.07724) as a combine rule."""
from ..core.schedules import in_interval, schedule_factor, scheduled_cfg
from .combine import CombineRule, Step


class CFGScheduleRule(CombineRule):
    """cfg_t = 1 + (cfg - 1) * f(progress) inside (sigma_low, sigma_high], cond only outside."""

    name = "CFG Schedule (Guidance Zoo)"

    def __init__(self, kind: str, floor: float, sigma_low: float, sigma_high: float):
        self.kind, self.floor, self.sigma_low, self.sigma_high = kind, floor, sigma_low, sigma_high

    def outside(self, model_options: dict, sigma) -> bool:
        return not in_interval(float(sigma.flatten()[0]), self.sigma_low, self.sigma_high)

    def guided(self, step: Step):
        if self.outside(step.model_options, step.sigma):
            return step.cond
        scale = scheduled_cfg(step.scale, schedule_factor(self.kind, step.progress, self.floor))
        return step.uncond + scale * (step.cond - step.uncond)
