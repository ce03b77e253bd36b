"""Skip-layer guidance combine (SD3.5 SLG, ComfyUI's SkipLayerGuidanceDiT): D_cfg + s (D_c - D_skip) inside a
sigma window, with the optional rescale towards the cond prediction's std."""
from dataclasses import dataclass

from ..core.slg import rescale_to_cond_std
from .perturbed_guidance import PerturbedGuidancePostCFG
from .schedule import Schedule


@dataclass(frozen=True)
class SigmaWindow:
    """Active while sigma_end <= sigma <= sigma_start (core SLG's test), times an optional Guidance Schedule."""
    sigma_start: float
    sigma_end: float
    schedule: Schedule | None = None

    def factor(self, model_options: dict, sigma) -> float:
        value = float(sigma.flatten()[0])
        if not self.sigma_end <= value <= self.sigma_start:
            return 0.0
        return 1.0 if self.schedule is None else self.schedule.factor(model_options, sigma)


class SkipLayerPostCFG(PerturbedGuidancePostCFG):
    def __init__(self, extra_pass, scale: float, schedule, rescaling_scale: float = 0.0):
        super().__init__(extra_pass, scale, schedule)
        self.rescaling_scale = rescaling_scale

    def __call__(self, args: dict):
        guided = super().__call__(args)
        if self.rescaling_scale == 0 or guided is args["denoised"]:
            return guided
        return rescale_to_cond_std(guided, args["cond_denoised"], self.rescaling_scale)
