"""FDG node: Frequency-Decoupled Guidance (arXiv 2506.19713)."""
from comfy_api.latest import io

from ..guiders.fdg import FDGRule
from .common import Number, model_patch_schema
from .method_info import MethodInfo, Node
from .schedule import patch_with_rule, scale_schedule_input

NAME = "FDG (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="FDG", nodes=(Node("FDG"),),
    paper="Sadat et al., arXiv 2506.19713",
    fixes="oversaturation vs detail: separate low/high-frequency scales",
    evaluations="2",
    models="all (video per frame)",
    at_cfg_1="no effect",
    claim="strong detail guidance without oversaturation; better quality and diversity than CFG")
HIGH = Number("high_scale", 10.0, 0.0, 100.0, "Guidance scale of the finest (high-frequency) level. The coarsest "
              "(low-frequency) level uses the sampler's cfg; the paper's SDXL setting is 10 here with cfg 5.")
LEVELS = Number("levels", 2, 2, 6, "Laplacian pyramid levels (paper: 2). Middle levels get scales interpolated "
                "between high_scale and cfg.", integer=True)
PAR_HIGH = Number("parallel_weight_high", 1.0, 0.0, 2.0, "Optional APG-style weight of the guidance part parallel to "
                  "the cond prediction at the finest level; 1 = none (paper default).")
PAR_LOW = Number("parallel_weight_low", 1.0, 0.0, 2.0, "The same at the coarsest level; 1 = none (paper default).")


class FDG(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "FDG", NAME, "cfg",
            "Frequency-Decoupled Guidance (Sadat et al., 2025, arXiv 2506.19713). Applies CFG separately to the "
            "levels of a Laplacian pyramid: strong guidance on high frequencies (detail) and the sampler's lower cfg "
            "on low frequencies (global colour and layout), avoiding oversaturation. Any latent size (padded and "
            "cropped back), video per frame. Cost: 2 model evaluations per step; no effect at cfg 1.",
            [HIGH.input(), LEVELS.input(), PAR_HIGH.input(), PAR_LOW.input(), scale_schedule_input()],
            "The model with FDG as its CFG step.",
            search_aliases=("frequency decoupled guidance", "low and high frequency cfg"))

    @classmethod
    def execute(cls, model, high_scale: float, levels: int, parallel_weight_high: float,
                parallel_weight_low: float, scale_schedule=None) -> io.NodeOutput:
        rule = FDGRule(HIGH.check(NAME, high_scale), LEVELS.check(NAME, levels),
                       PAR_HIGH.check(NAME, parallel_weight_high),
                       PAR_LOW.check(NAME, parallel_weight_low))
        return patch_with_rule(model, rule, scale_schedule)
