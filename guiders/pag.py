"""PAG (arXiv 2403.17377) as a post-CFG function: one extra cond pass with perturbed self-attention."""
from ..attention_patches.hook import PerturbedPass
from ..core.pag import pag_extrapolate


class PAGPostCFG:
    """D = D_cfg + s (D_c - D_perturbed); with cfg 1 ComfyUI skips the uncond pass and this is PAG alone."""

    def __init__(self, perturbed_pass: PerturbedPass, scale: float):
        self.perturbed_pass, self.scale = perturbed_pass, scale

    def __call__(self, args: dict):
        if self.scale == 0:
            return args["denoised"]
        (perturbed,) = self.perturbed_pass.run(args["model"], [args["cond"]], args["input"], args["sigma"],
                                               args["model_options"])
        return pag_extrapolate(args["denoised"], args["cond_denoised"], perturbed, self.scale)
