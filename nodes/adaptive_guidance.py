"""Adaptive Guidance node (arXiv 2312.12487)."""
from comfy_api.latest import io

from ..guiders.adaptive_guidance import AdaptiveGuidanceRule
from ..guiders.main_call import UncondSkip
from .common import Number, model_patch_schema
from .method_info import MethodInfo, Node

NAME = "Adaptive Guidance (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="Adaptive Guidance", nodes=(Node("AdaptiveGuidance"),),
    paper="Castillo et al., arXiv 2312.12487",
    fixes="wasted uncond passes once cond and uncond agree",
    evaluations="2 until the switch, then 1",
    models="all",
    at_cfg_1="no effect",
    claim="CFG's quality with fewer model evaluations (uncond pass dropped once cond and uncond agree)")
THRESHOLD = Number("threshold", 0.991, 0.0, 1.0, "Cosine similarity of the cond and uncond denoised predictions above "
                   "which "
                   "guidance stops for the rest of the run (0.99-0.999; community default 0.991). Lower saves more.",
                   step=0.0001)


class AdaptiveGuidance(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "AdaptiveGuidance", NAME, "nfe_savers",
            "Adaptive Guidance (Castillo et al., arXiv 2312.12487). Watches the cosine similarity of the cond and "
            "uncond denoised predictions (per sample; eps-space similarity stays near 1 on real eps models and "
            "would stop guidance at once); once it passes the threshold, CFG is truncated "
            "and the rest of the run uses the cond prediction alone, without running the uncond pass. Cost: 2 model "
            "evaluations per step until the switch, 1 after. No effect at cfg 1.",
            [THRESHOLD.input()], "The model with Adaptive Guidance.",
            search_aliases=("adaptive guidance", "skip uncond", "faster cfg"))

    @classmethod
    def execute(cls, model, threshold: float) -> io.NodeOutput:
        rule = AdaptiveGuidanceRule(THRESHOLD.check(NAME, threshold))
        patched = model.clone()
        rule.install(patched)
        UncondSkip(rule.all_switched).install(patched)
        return io.NodeOutput(patched)
