"""FDG (arXiv 2506.19713): CFG per Laplacian-pyramid level; the lowest level uses the sampler's cfg."""
from ..core.fdg import fdg
from .combine import CombineRule, Step


class FDGRule(CombineRule):
    name = "FDG (Guidance Zoo)"

    def __init__(self, high_scale: float, levels: int, parallel_weight_high: float, parallel_weight_low: float):
        self.high_scale, self.levels = high_scale, levels
        self.parallel_weight_high, self.parallel_weight_low = parallel_weight_high, parallel_weight_low

    def level_values(self, high: float, low: float) -> list[float]:
        """Finest level first; levels between the two ends are interpolated linearly."""
        return [high + (low - high) * i / (self.levels - 1) for i in range(self.levels)]

    def guided(self, step: Step):
        return fdg(step.cond, step.uncond, self.level_values(self.high_scale, step.scale),
                   self.level_values(self.parallel_weight_high, self.parallel_weight_low))
