"""Skip-layer guidance combine (SD3.5 SLG, ComfyUI's SkipLayerGuidanceDiT): D_cfg + s (D_c - D_skip) inside a
sigma window, with the optional rescale towards the cond prediction's std."""
from dataclasses import dataclass
from typing import Callable

from ..core.slg import rescale_to_cond_std
from .idle import check_run, listed, round_down, round_up
from .perturbed_guidance import PerturbedGuidancePostCFG
from .schedule import Schedule


@dataclass(frozen=True)
class SigmaWindow:
    """Active while sigma_end <= sigma <= sigma_start (core SLG's test), times an optional Guidance Schedule.

    With node, percents (start, end) and percent_of (sigma -> schedule fraction) set, a run none of whose steps
    falls in the window logs one warning naming the percent to change."""
    sigma_start: float
    sigma_end: float
    schedule: Schedule | None = None
    node: str = ""
    percents: tuple[float, float] = (0.0, 1.0)
    percent_of: Callable[[float], float] | None = None

    def factor(self, model_options: dict, sigma) -> float:
        if self.percent_of is not None:
            check_run(model_options, self, self.idle_message)
        value = float(sigma.flatten()[0])
        if not self.sigma_end <= value <= self.sigma_start:
            return 0.0
        return 1.0 if self.schedule is None else self.schedule.factor(model_options, sigma)

    def idle_message(self, sigmas: list[float]) -> str | None:
        """None when a step falls in the window; else the warning, with the nearest percent that takes one in."""
        if any(self.sigma_end <= s <= self.sigma_start for s in sigmas):
            return None
        below = [s for s in sigmas if s < self.sigma_end]
        if below:
            setting, value = "end_percent", min(round_up(self.percent_of(max(below)), 2), 1.0)
        else:
            setting, value = "start_percent", round_down(self.percent_of(min(sigmas)) - 1e-4, 2)
        start, end = self.percents
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
