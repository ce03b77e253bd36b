"""A guidance schedule: the weight-schedule factor (arXiv 2404.13040) inside a sigma interval (arXiv 2404.07724),
zero outside. Used on the CFG scale (CFG Schedule node) and on our methods' own scales (a GUIDANCE_SCHEDULE input)."""
from dataclasses import dataclass

import torch

from ..core.schedules import in_interval, schedule_factor
from ..core.run_steps import check_run, listed, progress, round_down, round_up


@dataclass(frozen=True)
class Schedule:
    """With node set, a run none of whose steps is inside the interval logs one warning naming the bound to move."""
    kind: str = "constant"
    floor: float = 0.0
    sigma_low: float = 0.0
    sigma_high: float = 1000.0
    node: str = ""

    def active(self, model_options: dict, sigma) -> bool:
        if self.node:
            check_run(model_options, self, self.idle_message)
        return in_interval(float(sigma.flatten()[0]), self.sigma_low, self.sigma_high)

    def idle_message(self, sigmas: list[float]) -> str | None:
        """None when a step is inside (sigma_low, sigma_high]; else the warning, with the nearest bound that takes
        one in."""
        if any(in_interval(s, self.sigma_low, self.sigma_high) for s in sigmas):
            return None
        above = [s for s in sigmas if s > self.sigma_high]
        if above:
            setting, value = "sigma_high", round_up(min(above), 3)
        else:
            setting, value = "sigma_low", round_down(max(sigmas) - 5e-4, 3)
        return (f"{self.node}: no step of this {len(sigmas)}-step schedule (sigmas {listed(sigmas)}) is inside "
                f"its interval ({self.sigma_low:g}, {self.sigma_high:g}], so its guidance is off at every step; "
                f"try {setting} {value:g}")

    def factor(self, model_options: dict, sigma) -> float:
        """The factor on a guidance scale at this step: 0 outside the interval."""
        if not self.active(model_options, sigma):
            return 0.0
        return schedule_factor(self.kind, progress(model_options, sigma), self.floor)


def diffusers_timestep(model, sigma: torch.Tensor, model_options: dict) -> float:
    """The 0-1000 timestep diffusers would report at this sigma: the DDPM timestep of discrete eps/v models
    (model_sampling.timestep), 1000 * sigma for flow models (FlowMatch schedulers' timestep; Cosmos' flow time
    sigma / (sigma + 1)), and 1000 * (1 - progress) for any other sampling type (EDM-style, where diffusers has no
    such scale)."""
    import comfy.model_sampling as ms
    sampling = model.model_sampling
    s = sigma.flatten()[:1]
    if isinstance(sampling, ms.CONST):
        return 1000.0 * float(s)
    if isinstance(sampling, ms.COSMOS_RFLOW):             # Cosmos Predict2, Anima: flow time sigma / (sigma + 1)
        return 1000.0 * float(sampling.timestep(s))
    if isinstance(sampling, ms.ModelSamplingDiscrete) and not isinstance(sampling, ms.ModelSamplingDiscreteEDM):
        return float(sampling.timestep(s.to(sampling.sigmas.device)))
    return 1000.0 * (1.0 - progress(model_options, sigma))
