"""beta-CFG (arXiv 2502.10574): time-shaped, norm-normalised guidance in the model-output space."""
from ..core.beta_cfg import beta_cfg
from .combine import CombineRule, Step


class BetaCFGRule(CombineRule):
    name = "beta-CFG (Guidance Zoo)"

    def __init__(self, a: float, b: float, gamma: float):
        self.a, self.b, self.gamma = a, b, gamma

    def guided(self, step: Step):
        out = beta_cfg(step.to_output(step.cond), step.to_output(step.uncond), step.scale, step.progress,
                       self.a, self.b, self.gamma)
        return step.from_output(out)
