"""Skip-layer guidance combine (SD3.5 SLG, ComfyUI's SkipLayerGuidanceDiT): D_cfg + s (D_c - D_skip) inside a
sigma window, with the optional rescale towards the cond prediction's std."""
import math
from dataclasses import dataclass
from collections.abc import Callable

from ..core.slg import rescale_to_cond_std
from ..core.run_steps import check_run, listed, round_down, round_up, step_sigmas
from .perturbed_guidance import PerturbedGuidancePostCFG
from .schedule import Schedule


@dataclass(frozen=True)
class SigmaWindow:
    """Active while sigma_end <= sigma <= sigma_start (core SLG's test), times an optional Guidance Schedule.

    With node, percents (start, end) and percent_of (sigma -> schedule fraction) set, a run none of whose steps
    falls in the window logs one warning naming the percent to change. min_steps: when the run's schedule puts fewer
    steps in the window, the steps nearest to it (in log sigma) act too, so 4-step runs are not left without it."""
    sigma_start: float
    sigma_end: float
    schedule: Schedule | None = None
    node: str = ""
    percents: tuple[float, float] = (0.0, 1.0)
    percent_of: Callable[[float], float] | None = None
    min_steps: int = 0

    def inside(self, sigma: float) -> bool:
        return self.sigma_end <= sigma <= self.sigma_start

    def added_steps(self, sigmas: list[float]) -> list[float]:
        """The step sigmas outside the window that act so that at least min_steps steps do, nearest first."""
        missing = self.min_steps - sum(self.inside(s) for s in sigmas)
        if missing <= 0:
            return []

        def distance(s: float) -> float:  # a window end at sigma 0 (percent 1) counts as the smallest sigma
            return min(abs(math.log(s / max(end, 1e-12))) for end in (self.sigma_start, self.sigma_end))
        return sorted((s for s in sigmas if s > 0 and not self.inside(s)), key=distance)[:missing]

    def factor(self, model_options: dict, sigma) -> float:
        if self.percent_of is not None:
            check_run(model_options, self, self.idle_message)
        value = float(sigma.flatten()[0])
        if not self.inside(value):
            sigmas = step_sigmas(model_options) if self.min_steps else None
            if not sigmas or not any(abs(value - s) <= 1e-6 * max(1.0, s) for s in self.added_steps(sigmas)):
                return 0.0
        return 1.0 if self.schedule is None else self.schedule.factor(model_options, sigma)

    def idle_message(self, sigmas: list[float]) -> str | None:
        """None when a step falls in the window; else the warning, with the nearest percent that takes one in."""
        if any(self.inside(s) for s in sigmas):
            return None
        start, end = self.percents
        added = self.added_steps(sigmas)
        if added:
            return (f"{self.node}: no step of this {len(sigmas)}-step schedule (sigmas {listed(sigmas)}) falls in "
                    f"start_percent {start:g} - end_percent {end:g}; it acts on the nearest step instead (sigma "
                    f"{listed(added)}), as min_steps {self.min_steps} asks; min_steps 0 keeps to the range")
        below = [s for s in sigmas if s < self.sigma_end]
        if below:
            setting, value = "end_percent", min(round_up(self.percent_of(max(below)), 2), 1.0)
        else:
            setting, value = "start_percent", round_down(self.percent_of(min(sigmas)) - 1e-4, 2)
        return (f"{self.node}: no step of this {len(sigmas)}-step schedule (sigmas {listed(sigmas)}) falls in "
                f"start_percent {start:g} - end_percent {end:g}, so it does nothing; try {setting} {value:g}")


class SkipLayerPostCFG(PerturbedGuidancePostCFG):
    def __init__(self, extra_pass, scale: float, schedule, rescaling_scale: float = 0.0):
        super().__init__(extra_pass, scale, schedule)
        self.rescaling_scale = rescaling_scale

    def __call__(self, args: dict):
        guided = super().__call__(args)
        if self.rescaling_scale == 0 or guided is args["denoised"]:
            return guided
        return rescale_to_cond_std(guided, args["cond_denoised"], self.rescaling_scale)
