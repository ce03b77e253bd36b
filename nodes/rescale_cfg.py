"""Rescale CFG node (arXiv 2305.08891)."""
from comfy_api.latest import io

from ..guiders.rescale_cfg import RescaleCFGRule
from .common import Number, model_patch_schema
from .method_info import MethodInfo, Node
from .schedule import patch_with_rule, scale_schedule_input

NAME = "Rescale CFG (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="Rescale CFG", nodes=(Node("RescaleCFG"),),
    paper="Lin et al., WACV 2024, arXiv 2305.08891",
    fixes="overexposure at high cfg (v-prediction, zero-SNR)",
    evaluations="2",
    models="all (v space for eps/v, velocity for flow)",
    at_cfg_1="no effect",
    claim="fixes overexposure at high cfg")
MULTIPLIER = Number("multiplier", 0.7, 0.0, 1.0, "phi: blend between the rescaled and the plain CFG prediction "
                    "(paper: 0.7). 0 is plain CFG.")


class RescaleCFG(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "RescaleCFG", NAME, "cfg",
            "Rescale CFG (Lin et al., WACV 2024, arXiv 2305.08891, section 3.4). Rescales the guided prediction to the "
            "per-sample standard deviation of the conditional one, fixing overexposure at high cfg. Works in v space "
            "for eps and v-prediction models (as ComfyUI's core node) and in velocity space for flow models (Flux, "
            "SD3, Wan), where core's conversion is wrong; std over all latent dims, so video is handled. Chainable "
            "(no exclusive CFG slot). Cost: 2 model evaluations per step; no effect at cfg 1.",
            [MULTIPLIER.input(), scale_schedule_input()], "The model with Rescale CFG applied.",
            search_aliases=("rescale cfg", "zero terminal snr", "overexposure"))

    @classmethod
    def execute(cls, model, multiplier: float, scale_schedule=None) -> io.NodeOutput:
        return patch_with_rule(model, RescaleCFGRule(MULTIPLIER.check(NAME, multiplier)), scale_schedule)
