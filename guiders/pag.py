"""PAG (arXiv 2403.17377) as a post-CFG function fed by one extra, batched, perturbed cond pass."""
from ..core.pag import pag_extrapolate
from .extra_pass import ExtraCondPass
from .run_state import SharedPatch


class PAGPostCFG(SharedPatch):
    """D = D_cfg + s (D_c - D_perturbed), D_c the model's own cond prediction; at cfg 1 this is PAG alone."""

    def __init__(self, extra_pass: ExtraCondPass, scale: float):
        self.extra_pass, self.scale = extra_pass, scale

    def __call__(self, args: dict):
        cond, perturbed = self.extra_pass.outputs(args)
        return pag_extrapolate(args["denoised"], cond, perturbed, self.scale)
