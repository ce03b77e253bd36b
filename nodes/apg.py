"""APG node: Adaptive Projected Guidance (arXiv 2410.02416)."""
from comfy_api.latest import io

from ..guiders.apg import APGRule
from .common import Number, model_patch_schema
from .method_info import MethodInfo, Node
from .schedule import patch_with_rule, scale_schedule_input

NAME = "APG (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="APG", nodes=(Node("APG"),),
    paper="Sadat et al., ICLR 2025, arXiv 2410.02416",
    fixes="oversaturation and artifacts at high CFG",
    evaluations="2",
    models="all",
    at_cfg_1="no effect",
    claim="high cfg without oversaturation, CFG's adherence kept, better FID/diversity than CFG at the same scale")
ETA = Number("eta", 0.0, -10.0, 10.0, "Weight of the guidance component parallel to the conditional prediction. "
             "0 (paper default) drops it; 1 keeps it, as plain CFG does.")
THRESHOLD = Number("norm_threshold", 15.0, 0.0, 1000.0, "Largest allowed L2 norm of the guidance per sample (over all "
                   "latent dims). 0 disables the clamp. Depends on latent size; 15 is the paper's SDXL-class value, "
                   "smaller values (2.5-5) act more strongly.", step=0.1)
MOMENTUM = Number("momentum", -0.5, -5.0, 1.0, "Momentum beta of the running guidance M = G + beta * M. Negative "
                  "values (paper: -0.5) push away from past directions; 0 disables it. Reset every run.")


class APG(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "APG", NAME, "cfg",
            "Adaptive Projected Guidance (Sadat, Hilliges, Weber, ICLR 2025, arXiv 2410.02416). Splits the CFG "
            "update into parts parallel and orthogonal to the conditional prediction, down-weights the parallel "
            "part that causes oversaturation, clamps its norm and adds reverse momentum, so high CFG scales stay "
            "clean. Uses the paper's rule D = D_c + (cfg - 1) * G' (ComfyUI's core APG node equals this at cfg + 1). "
            "Cost: 2 model evaluations per step, like CFG; no effect at cfg 1. Stacks with other pre/post-CFG "
            "patches; later patches see the rewritten cond prediction.",
            [ETA.input(), THRESHOLD.input(), MOMENTUM.input(), scale_schedule_input()],
            "The model with APG applied to its CFG step.",
            search_aliases=("adaptive projected guidance", "oversaturation"))

    @classmethod
    def execute(cls, model, eta: float, norm_threshold: float, momentum: float, scale_schedule=None) -> io.NodeOutput:
        rule = APGRule(ETA.check(NAME, eta), THRESHOLD.check(NAME, norm_threshold), MOMENTUM.check(NAME, momentum))
        return patch_with_rule(model, rule, scale_schedule)
