"""APG (arXiv 2410.02416) as a combine rule: D = D_c + (w - 1) G', momentum kept per run."""
from ..core.apg import apg_denoised, apg_guidance
from .combine import CombineRule, Step


class APGRule(CombineRule):
    name = "APG (Guidance Zoo)"

    def __init__(self, eta: float, norm_threshold: float, momentum: float):
        self.eta, self.norm_threshold, self.momentum = eta, norm_threshold, momentum

    def guided(self, step: Step):
        state = self.state(step)
        running = state.get("momentum")
        if running is not None and running.shape != step.cond.shape:
            running = None
        guidance, state["momentum"] = apg_guidance(step.cond, step.uncond, self.eta, self.norm_threshold,
                                                   self.momentum, running)
        return apg_denoised(step.cond, guidance, step.scale)
