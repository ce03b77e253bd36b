"""Adaptive Guidance (arXiv 2312.12487): once cond and uncond agree, stop guiding and stop running the uncond pass."""
import torch

from ..core.adaptive_guidance import guidance_cosine
from .combine import CombineRule, Step
from ..core.run_steps import is_last_step, warn_once
from ..core.run_state import run_state


class AdaptiveGuidanceRule(CombineRule):
    """Per sample: when cos(D_c, D_u) exceeds the threshold, that sample is cond-only for the rest of the run.

    The similarity is taken on the denoised predictions: on a trained eps model the eps (or x - D) predictions of
    cond and uncond are dominated by the shared noise and stay at cosine ~0.9995 from the first step to the last
    (measured on the bundled digits model), so an eps-space test switches at once and removes all guidance, while
    the denoised predictions start apart (0.92 at sigma_max) and converge (1.0 at the end) as the paper describes.
    """

    name = "Adaptive Guidance (Guidance Zoo)"

    def __init__(self, threshold: float):
        self.threshold = threshold

    def guided(self, step: Step):
        state = self.state(step)
        switched = state.get("switched")
        if switched is None or switched.shape[0] != step.cond.shape[0]:
            switched = torch.zeros(step.cond.shape[0], dtype=torch.bool, device=step.cond.device)
        cosine = guidance_cosine(step.cond, step.uncond)
        if not bool(switched.all()) and is_last_step(step.model_options, step.sigma):
            warn_once(step.model_options, self, self.idle_message(state.get("peak"), switched))
        peak = state.get("peak")
        state["peak"] = cosine if peak is None or peak.shape != cosine.shape else torch.maximum(peak, cosine)
        switched = switched | (cosine > self.threshold)
        state["switched"] = switched
        cfg = step.uncond + step.scale * (step.cond - step.uncond)
        return torch.where(switched.view((-1,) + (1,) * (cfg.ndim - 1)), step.cond, cfg)

    def idle_message(self, peak: torch.Tensor | None, switched: torch.Tensor) -> str:
        """The warning of a run that reached its last step with a sample not switched, with a threshold that the
        slowest sample passed on an earlier step (each sample follows plain CFG until it switches)."""
        message = (f"{self.name}: cond and uncond did not pass threshold {self.threshold:g} before the last step "
                   f"of this run, so no uncond pass was saved")
        if peak is None or peak.shape != switched.shape:
            return message
        closest = float(peak[~switched].min())
        return message + f"; their closest was cosine {closest:.4f}: try threshold {max(closest - 1e-4, 0):.4f}"

    def all_switched(self, model_options: dict, sigma) -> bool:
        switched = run_state(model_options, self).get("switched")
        return switched is not None and bool(switched.all())
