"""CFG-Zero* (arXiv 2503.18886): optimized scale and zero-init, official rule or ComfyUI core's variant."""
from ..core.cfg_zero_star import cfg_zero_star, optimized_scale
from .combine import CombineRule, Step

MODES = ("official", "comfyui_core")


class CFGZeroStarRule(CombineRule):
    name = "CFG-Zero* (Guidance Zoo)"

    def __init__(self, zero_init_steps: int, mode: str):
        self.zero_init_steps, self.mode = zero_init_steps, mode

    def guided(self, step: Step):
        if self.mode == "comfyui_core":
            alpha = optimized_scale(step.x - step.cond, step.x - step.uncond).to(step.cond.dtype)
            return alpha * step.uncond + step.scale * (step.cond - alpha * step.uncond)
        if step.prediction == "flow" and step.index_and_count[0] < self.zero_init_steps:
            return step.x.clone()
        return step.x - cfg_zero_star(step.x - step.cond, step.x - step.uncond, step.scale)
