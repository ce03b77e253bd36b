"""SEG node: Smoothed Energy Guidance (arXiv 2408.00760) on every architecture."""
from comfy_api.latest import io

from ..attention_patches.seg import seg_perturbation
from ..core.seg import INFINITE_BLUR
from .common import NodeInputError, Number, model_patch_schema
from .method_info import MethodInfo, Node
from .perturbation import layer_and_schedule_inputs, patch_with_perturbation, resolve_layers

NAME = "SEG (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="SEG", nodes=(Node("SEG"),),
    paper="Hong, NeurIPS 2024, arXiv 2408.00760",
    fixes="structure without CFG's saturation (blurred attention queries)",
    evaluations="3 (2 at cfg 1), one batched call",
    models="every family (finite blur on UNets, infinite everywhere)",
    at_cfg_1="SEG alone",
    claim="better sample quality without CFG by blurring attention energy")
SCALE = Number("scale", 3.0, 0.0, 100.0, "SEG scale s (official SDXL default 3.0). 0 turns SEG off and costs nothing.")
SIGMA = Number("blur_sigma", 9999999.0, 0.0, 9999999.0, "Gaussian blur of the queries on the token grid; 9999 or "
               "more is infinite blur (the official default: each query becomes their mean). The paper suggests "
               "raising it exponentially (1, 4, 16, ...). Finite values need the token grid, which UNets provide.",
               step=0.1)


class SEG(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "SEG", NAME, "perturbation",
            "Smoothed Energy Guidance (Hong, NeurIPS 2024, arXiv 2408.00760). Runs the conditional prediction again "
            "with the self-attention queries of chosen layers blurred by a Gaussian (lowering the curvature of the "
            "attention energy) and steers away from it: D = D_cfg + scale * (D_c - D_SEG). On joint attention only "
            "image tokens are blurred. Infinite blur works on every family; finite blur on UNets. The extra pass runs "
            "batched with cond and uncond; attention is computed in chunks, never as a full N x N matrix. Cost: 3 "
            "model evaluations per step with CFG, 2 at cfg 1.",
            [SCALE.input(), SIGMA.input()] + layer_and_schedule_inputs(),
            "The model with SEG added after its CFG step.",
            search_aliases=("smoothed energy guidance", "blurred attention"))

    @classmethod
    def execute(cls, model, scale: float, blur_sigma: float, layers: str, scale_schedule=None) -> io.NodeOutput:
        sigma = SIGMA.check(NAME, blur_sigma)
        chosen = resolve_layers(model, NAME, layers)
        if sigma < INFINITE_BLUR and not chosen[0].family.token_grid:
            raise NodeInputError(f"{NAME}: a finite blur_sigma needs the token grid, which only UNets (SD1.5, SDXL) "
                                 f"provide; use infinite blur ({INFINITE_BLUR:g} or more) on this "
                                 f"{chosen[0].model_name} model")
        if sigma <= 0:
            raise NodeInputError(f"{NAME}: 'blur_sigma' must be above 0 "
                                 f"(use {INFINITE_BLUR:g} or more for infinite blur)")
        return io.NodeOutput(patch_with_perturbation(model, NAME, SCALE.check(NAME, scale), chosen, scale_schedule,
                                                     seg_perturbation(sigma)))
