"""Perturbation guidance (PAG arXiv 2403.17377, SEG arXiv 2408.00760, ...): a post-CFG function fed by one extra,
batched, perturbed cond pass."""
from ..core.pag import pag_extrapolate
from .extra_pass import ExtraCondPass
from ..core.run_state import SharedPatch
from .schedule import Schedule


class PerturbedGuidancePostCFG(SharedPatch):
    """D = D_cfg + s (D_c - D_perturbed), D_c the model's own cond prediction; at cfg 1 this is PAG alone."""

    def __init__(self, extra_pass: ExtraCondPass, scale: float, schedule: Schedule | None = None):
        self.extra_pass, self.scale, self.schedule = extra_pass, scale, schedule

    def __call__(self, args: dict):
        scale = self.scale
        if self.schedule is not None:
            scale *= self.schedule.factor(args["model_options"], args["sigma"])
            if scale == 0:
                return args["denoised"]
        cond, perturbed = self.extra_pass.outputs(args)
        return pag_extrapolate(args["denoised"], cond, perturbed, scale)
