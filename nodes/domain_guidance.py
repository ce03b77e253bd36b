"""Domain Guidance nodes (Zhong et al., ICLR 2025, arXiv 2504.01521): the pre-trained source model guides its
fine-tuned version toward the target domain."""
from comfy_api.latest import io

from .method_info import MethodInfo, Node
from .two_model import UncondGuiderNode, UncondMethod, UncondPatchNode, cfg_input

METHOD_INFO = MethodInfo(
    name="Domain Guidance", nodes=(Node("DomainGuidance"), Node("DomainGuidanceGuider", "guider", bold=False)),
    paper="Zhong et al., ICLR 2025, arXiv 2504.01521",
    fixes="transfer to a target domain: cond from the fine-tuned model, uncond from the pre-trained source",
    evaluations="2, one call per model",
    models="every family",
    at_cfg_1="no effect")

METHOD = UncondMethod(
    node_id="DomainGuidance", name="Domain Guidance (Guidance Zoo)", second="source_model",
    tooltip="The pre-trained (source-domain) model the fine-tuned model was trained from.",
    description=(
        "Domain Guidance (Zhong et al., ICLR 2025, arXiv 2504.01521): the conditional branch from the fine-tuned "
        "(target-domain) model, the unconditional one from the pre-trained source model: "
        "D = D_source(neg) + w (D_fine-tuned(c) - D_source(neg)), which steers samples away from the source domain "
        "toward the target. Works with fine-tunes and LoRAs of the source (a LoRA runs as a weight variant, without "
        "a second copy). Every CFG-family node applied to the model works on that pair. Cost: 2 model evaluations "
        "per step, one on each model; at cfg 1 nothing changes (1 evaluation)."),
    model_note=" The model input is the fine-tuned model; the KSampler's cfg is w.",
    output_tooltip="The fine-tuned model guided by the source model.",
    cfg=cfg_input(8.0))


class DomainGuidance(UncondPatchNode, io.ComfyNode):
    METHOD = METHOD


class DomainGuidanceGuider(UncondGuiderNode, io.ComfyNode):
    METHOD = METHOD
