"""Unconditional priors nodes ("Unconditional Priors Matter!", Phunyaphibarn et al., arXiv 2503.20240): the
unconditional branch of a fine-tuned model comes from a base model."""
from comfy_api.latest import io

from .method_info import MethodInfo, Node
from .two_model import UncondGuiderNode, UncondMethod, UncondPatchNode, cfg_input

METHOD_INFO = MethodInfo(
    name="Unconditional Prior",
    nodes=(Node("UnconditionalPrior"), Node("UnconditionalPriorGuider", "guider", bold=False)),
    paper="Phunyaphibarn et al., arXiv 2503.20240",
    fixes="a fine-tune's degraded unconditional branch: take it from a base model",
    evaluations="2, one call per model",
    models="every family",
    at_cfg_1="no effect")

METHOD = UncondMethod(
    node_id="UnconditionalPrior", name="Unconditional Prior (Guidance Zoo)", second="base_model",
    tooltip=("The model whose unconditional prediction is used: a good base model of the same family (the paper "
             "finds any such base works, not only the one the fine-tune came from)."),
    description=(
        "Unconditional priors (Phunyaphibarn et al., arXiv 2503.20240): a fine-tuned model's unconditional branch "
        "is often degraded; take it from a base model instead: D = D_base(neg) + cfg (D(c) - D_base(neg)), with the "
        "fine-tuned model's usual cfg. Every CFG-family node applied to the model works on that pair. Cost: 2 model "
        "evaluations per step, one on each model (cond on the fine-tuned model, negative on the base); at cfg 1 "
        "nothing changes (1 evaluation)."),
    model_note=" The model input is the fine-tuned model; the KSampler's cfg is w.",
    output_tooltip="The fine-tuned model with its unconditional branch taken from the base model.",
    cfg=cfg_input(8.0))


class UnconditionalPrior(UncondPatchNode, io.ComfyNode):
    METHOD = METHOD


class UnconditionalPriorGuider(UncondGuiderNode, io.ComfyNode):
    METHOD = METHOD
