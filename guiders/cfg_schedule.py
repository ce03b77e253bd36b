"""CFG weight schedules (arXiv 2404.13040) and the guidance interval (arXiv 2404.07724) as a combine rule."""
from ..core.schedules import scheduled_cfg
from .combine import CombineRule, Step
from .schedule import Schedule


class CFGScheduleRule(CombineRule):
    """cfg_t = 1 + (cfg - 1) * f(progress) inside (sigma_low, sigma_high], cond only outside."""

    name = "CFG Schedule (Guidance Zoo)"

    def __init__(self, schedule: Schedule):
        self.schedule = schedule

    def outside(self, model_options: dict, sigma) -> bool:
        return not self.schedule.active(model_options, sigma)

    def guided(self, step: Step):
        scale = scheduled_cfg(step.scale, self.schedule.factor(step.model_options, step.sigma))
        return step.uncond + scale * (step.cond - step.uncond)
