"""TCFG node: Tangential Damping CFG (arXiv 2503.18137)."""
from comfy_api.latest import io

from ..guiders.tcfg import TCFGRule
from .common import model_patch_schema
from .method_info import MethodInfo, Node
from .schedule import patch_with_rule, scale_schedule_input

NAME = "TCFG (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="TCFG", nodes=(Node("TCFG"),),
    paper="Tangential Damping CFG, arXiv 2503.18137",
    fixes="uncond off the data manifold",
    evaluations="2 (+ a 2 x N SVD per sample)",
    models="all",
    at_cfg_1="no effect",
    claim="better sample quality (FID) than CFG at the same scale")


class TCFG(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "TCFG", NAME, "cfg",
            "Tangential Damping CFG (arXiv 2503.18137). Per sample, projects the uncond score onto the "
            "top singular direction of [uncond; cond] scores, dropping its tangential part, then ordinary CFG. Same "
            "result as ComfyUI's core TCFG node, composable with our other rules. Cost: 2 model evaluations per step "
            "plus one 2 x N SVD per sample; no effect at cfg 1.", [scale_schedule_input()],
            "The model with TCFG applied.",
            search_aliases=("tangential damping cfg",))

    @classmethod
    def execute(cls, model, scale_schedule=None) -> io.NodeOutput:
        return patch_with_rule(model, TCFGRule(), scale_schedule)
