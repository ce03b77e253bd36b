"""CFG-Zero* node (arXiv 2503.18886)."""
from comfy_api.latest import io

from ..guiders.cfg_zero_star import MODES, CFGZeroStarRule
from .common import Number, check_choice, model_patch_schema
from .method_info import MethodInfo, Node
from .schedule import patch_with_rule, scale_schedule_input

NAME = "CFG-Zero* (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="CFG-Zero*", nodes=(Node("CFGZeroStar"),),
    paper="Fan et al., arXiv 2503.18886",
    fixes="early-step errors of flow models",
    evaluations="2",
    models="all, made for flow (SD3, Flux, Wan)",
    at_cfg_1="no effect",
    claim_label="CFG-Zero* (arXiv 2503.18886, for flow models)",
    claim="better quality and adherence than CFG at the same scale")
ZERO_STEPS = Number("zero_init_steps", 1, 0, 1000, "Official zero-init: the first N steps output zero velocity "
                    "(the paper zeroes about 4% of steps; 1 = the first step). Flow models only (Flux, SD3, Wan...): "
                    "on eps/v models a zeroed step leaves the latent far noisier than the schedule expects, so it is "
                    "not applied there. Ignored in comfyui_core mode.", integer=True)


class CFGZeroStar(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "CFGZeroStar", NAME, "cfg",
            "CFG-Zero* (Fan et al., arXiv 2503.18886), made for flow models. Scales the uncond velocity by the "
            "per-sample optimal alpha* = <v_c, v_u> / ||v_u||^2 before CFG, and zeroes the first steps (zero-init). "
            "mode 'official' follows the paper's code; 'comfyui_core' reproduces ComfyUI's CFGZeroStar node (alpha* "
            "applied to the denoised uncond, no zero-init). Cost: 2 model evaluations per step; no effect at cfg 1.",
            [ZERO_STEPS.input(),
             io.Combo.Input("mode", options=list(MODES), default="official",
                            tooltip="official: the paper's rule in velocity space with zero-init. comfyui_core: "
                                    "the same result as ComfyUI's core CFGZeroStar node."),
             scale_schedule_input()],
            "The model with CFG-Zero* applied.",
            search_aliases=("cfg zero star", "cfg-zero*", "flow matching cfg"))

    @classmethod
    def execute(cls, model, zero_init_steps: int, mode: str, scale_schedule=None) -> io.NodeOutput:
        rule = CFGZeroStarRule(ZERO_STEPS.check(NAME, zero_init_steps), check_choice(NAME, "mode", mode, MODES))
        return patch_with_rule(model, rule, scale_schedule)
