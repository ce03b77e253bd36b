"""ICG node: Independent Condition Guidance (Sadat et al., ICLR 2025, arXiv 2407.02687)."""
from comfy_api.latest import io

from ..guiders.icg import ICG, NAME as ICG_NAME
from .common import model_patch_schema, patched
from .method_info import MethodInfo, Node

METHOD_INFO = MethodInfo(
    name="ICG", nodes=(Node("ICG"),),
    paper="Sadat et al., ICLR 2025, arXiv 2407.02687",
    fixes="CFG without a trained null prompt: the uncond pass gets a random condition independent of the sample",
    evaluations="2, one batched call",
    models="all text-conditioned (pooled embedding of SDXL/SD3/Flux included)",
    at_cfg_1="no effect",
    claim="CFG's quality from a random independent condition instead of a trained null condition")


class IndependentConditionGuidance(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "ICG", ICG_NAME, "cfg",
            "Independent Condition Guidance (Sadat, Kansy, Hilliges, Weber, ICLR 2025, arXiv 2407.02687). CFG "
            "without a trained unconditional branch: the uncond pass runs on a random condition independent of the "
            "sample (a Gaussian embedding with the mean and std of the prompt's embedding per sample, pooled "
            "embedding included, redrawn every model call, seeded by the sampler's seed) instead of the negative "
            "prompt, which is ignored. For models never trained with a null prompt, or as an alternative to it. "
            "The KSampler's cfg is the ICG scale (paper: about the CFG value or a bit lower, e.g. 3 where CFG used "
            "4). Cost: 2 model evaluations per step, like CFG; no effect at cfg 1.",
            [], "The model with ICG in place of its uncond pass.",
            search_aliases=("independent condition guidance", "cfg without negative prompt"))

    @classmethod
    def execute(cls, model) -> io.NodeOutput:
        return io.NodeOutput(patched(model, ICG()))
