"""ASAG node: Adversarial Sinkhorn Attention Guidance (arXiv 2511.07499) on every architecture."""
from comfy_api.latest import io

from ..attention_patches.asag import asag_perturbation
from .common import Number, model_patch_schema
from .method_info import MethodInfo, Node
from .perturbation import layer_and_schedule_inputs, patch_with_perturbation, resolve_layers

NAME = "ASAG (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="ASAG", nodes=(Node("ASAG"),),
    paper="Kim, AAAI 2026, arXiv 2511.07499",
    fixes="structure and detail: steers away from an adversarial optimal-transport (Sinkhorn) self-attention",
    evaluations="3 (2 at cfg 1), one batched call",
    models="every family",
    at_cfg_1="ASAG alone",
    claim="better sample quality than PAG/SEG-style perturbations; adds to CFG")
SCALE = Number("scale", 1.5, 0.0, 100.0, "ASAG scale s: D = D_cfg + s * (D_c - D_ASAG). 1.5 (the default of the "
               "public ComfyUI/Forge port; the paper gives no code). 0 turns ASAG off and costs nothing.")
EPSILON = Number("epsilon", 1.0, 0.01, 100.0, "Entropic temperature of the Sinkhorn plan exp(-S / epsilon), in units "
                 "of the attention logits S; 1 = the model's own softmax temperature. Lower = sharper toward the "
                 "least similar keys.")
ITERATIONS = Number("iterations", 2, 0, 50, "Sinkhorn column/row normalisation rounds (the port's default 2); "
                    "0 gives softmax(-S / epsilon), more approach a doubly stochastic plan. Each costs two passes "
                    "over the logits of the perturbed layers.", integer=True)


class ASAG(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "ASAG", NAME, "perturbation",
            "Adversarial Sinkhorn Attention Guidance (Kim, AAAI 2026, arXiv 2511.07499). Runs the conditional "
            "prediction again with the self-attention map of chosen layers replaced by an entropic optimal-transport "
            "plan whose cost is the query-key similarity itself (so attention flows to the least similar keys), "
            "found by log-domain Sinkhorn iterations, and steers away from it: D = D_cfg + scale * (D_c - D_ASAG). "
            "On joint attention only the image-image part is replaced. The plan is computed in fp32 in chunks, "
            "never as a full N x N matrix. The extra pass runs batched with cond and uncond. Cost: 3 model "
            "evaluations per step with CFG, 2 at cfg 1.",
            [SCALE.input(), EPSILON.input(), ITERATIONS.input()] + layer_and_schedule_inputs(),
            "The model with ASAG added after its CFG step.",
            search_aliases=("adversarial sinkhorn attention guidance", "optimal transport attention"))

    @classmethod
    def execute(cls, model, scale: float, epsilon: float, iterations: int, layers: str,
                scale_schedule=None) -> io.NodeOutput:
        scale, epsilon = SCALE.check(NAME, scale), EPSILON.check(NAME, epsilon)
        iterations = ITERATIONS.check(NAME, iterations)
        return io.NodeOutput(patch_with_perturbation(model, NAME, scale, resolve_layers(model, NAME, layers),
                                                     scale_schedule, asag_perturbation(epsilon, iterations)))
