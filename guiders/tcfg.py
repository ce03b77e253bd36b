"""TCFG (arXiv 2503.18137): damp the uncond score's tangential part, then ordinary CFG."""
from ..core.tcfg import tangential_damping
from .combine import CombineRule, Step


class TCFGRule(CombineRule):
    name = "TCFG (Guidance Zoo)"

    def rewrite(self, step: Step):
        return step.cond, step.x - tangential_damping(step.x - step.cond, step.x - step.uncond)
