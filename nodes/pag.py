"""PAG node: Perturbed-Attention Guidance (arXiv 2403.17377) on every architecture."""
from comfy_api.latest import io

from ..attention_patches.pag import pag_perturbation
from .common import Number, model_patch_schema
from .method_info import MethodInfo, Node
from .perturbation import layer_and_schedule_inputs, patch_with_perturbation, resolve_layers

NAME = "PAG (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="PAG", nodes=(Node("PAG"),),
    paper="Ahn et al., ECCV 2024, arXiv 2403.17377",
    fixes="structure and detail, with or without CFG",
    evaluations="3 (2 at cfg 1), one batched call",
    models="every family",
    at_cfg_1="PAG alone",
    claim="better structure and sample quality (FID) without CFG; adds to CFG")
SCALE = Number("scale", 3.0, 0.0, 100.0,
               "PAG scale s (paper/diffusers default 3.0). 0 turns PAG off and costs nothing.")


class PAG(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "PAG", NAME, "perturbation",
            "Perturbed-Attention Guidance (Ahn et al., ECCV 2024, arXiv 2403.17377). Runs the conditional "
            "prediction a second time with the self-attention map of chosen layers replaced by the identity and "
            "steers away from it: D = D_cfg + scale * (D_c - D_perturbed). The extra pass runs in the same batched "
            "model call as cond and uncond. Works on UNets and DiTs (every family of the README's support matrix); on "
            "joint attention image tokens keep seeing the text. Cost: 3 model "
            "evaluations per step with CFG, 2 at cfg 1 (PAG alone).",
            [SCALE.input()] + layer_and_schedule_inputs(), "The model with PAG added after its CFG step.",
            search_aliases=("perturbed attention guidance",))

    @classmethod
    def execute(cls, model, scale: float, layers: str, scale_schedule=None) -> io.NodeOutput:
        scale = SCALE.check(NAME, scale)
        return io.NodeOutput(patch_with_perturbation(model, NAME, scale, resolve_layers(model, NAME, layers),
                                                     scale_schedule, pag_perturbation))
