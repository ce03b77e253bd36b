"""Dynamic thresholding node (Imagen, arXiv 2205.11487)."""
from comfy_api.latest import io

from ..guiders.dynamic_thresholding import DynamicThresholdingRule
from .common import Number, model_patch_schema
from .method_info import MethodInfo, Node
from .schedule import patch_with_rule, scale_schedule_input

NAME = "Dynamic Thresholding (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="Dynamic Thresholding", nodes=(Node("DynamicThresholding"),),
    paper="Saharia et al. (Imagen), arXiv 2205.11487",
    fixes="saturation at high cfg",
    evaluations="2",
    models='all (latent range from a lower "mimic" cfg)',
    at_cfg_1="no effect",
    claim_label="Dynamic thresholding (Imagen)",
    claim="high cfg keeps the contrast of a lower one (no saturation)")
PERCENTILE = Number("percentile", 0.995, 0.5, 1.0, "Percentile p of |D - mean| that sets the threshold "
                    "(Imagen: 0.995).", step=0.001)
MIMIC = Number("mimic_scale", 7.0, 0.0, 100.0, "The cfg whose latent range counts as normal: values beyond the "
               "range that CFG at this scale would give are clamped and the result is scaled back into it. "
               "0 uses Imagen's fixed range 1 (only right for pixel-space models).")


class DynamicThresholding(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "DynamicThresholding", NAME, "cfg",
            "Dynamic thresholding (Saharia et al., Imagen, arXiv 2205.11487) for latent models: per sample and "
            "channel, s = max(p-th percentile of |D - mean|, reference range); D = mean + clamp(D - mean, -s, s) * "
            "range / s. The reference range is the same percentile of the prediction CFG would give at mimic_scale, "
            "since latents are not in [-1, 1]. Lets high cfg keep the contrast of a lower one. Video frames are "
            "pooled per channel. Cost: 2 model evaluations per step; no effect at cfg 1.",
            [PERCENTILE.input(), MIMIC.input(), scale_schedule_input()],
            "The model with dynamic thresholding after CFG.",
            search_aliases=("dynamic thresholding", "imagen thresholding", "mimic cfg", "high cfg"))

    @classmethod
    def execute(cls, model, percentile: float, mimic_scale: float, scale_schedule=None) -> io.NodeOutput:
        rule = DynamicThresholdingRule(PERCENTILE.check(NAME, percentile), MIMIC.check(NAME, mimic_scale))
        return patch_with_rule(model, rule, scale_schedule)
