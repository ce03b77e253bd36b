"""Perp-Neg nodes (Armandpour et al., 2023, arXiv 2304.04968): a guider and a model patch for the stock KSampler."""
from comfy_api.latest import io

from ..guiders.perpneg import PerpNegGuider, PerpNegPostCFG
from .common import CATEGORY, PREFIX, NodeInputError, check_number, schema
from .conditioning import check_conditioning
from .method_info import MethodInfo, Node

NAME = "Perp-Neg Guider (Guidance Zoo)"
PATCH_NAME = "Perp-Neg (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="Perp-Neg", nodes=(Node("PerpNegGuider", "Perp-Neg Guider", tag="GUIDER"), Node("PerpNeg")),
    paper="Armandpour et al., arXiv 2304.04968",
    fixes="negative prompts that fight the positive",
    evaluations="3, one batched call",
    models="all",
    at_cfg_1="-",
    short="Perp-Neg patch")
CFG = ("cfg", 8.0, 0.0, 100.0)
NEG_SCALE = ("neg_scale", 1.0, 0.0, 100.0)


def require_conditioning(node: str, name: str, value, model) -> None:
    """Perp-Neg cannot run without all three prompts, each encoded for the model: fail with the node's name instead
    of sampling without one or with a raw error."""
    if not value:
        raise NodeInputError(f"{node}: '{name}' is missing or empty; Perp-Neg needs a positive, a negative and an "
                             "empty-prompt conditioning (CLIPTextEncode of \"\").")
    check_conditioning(node, name, value, model)


class PerpNegGuiderNode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id=f"{PREFIX}PerpNegGuider",
            display_name=NAME,
            category=f"{CATEGORY}/guiders",
            description=(
                "Perp-Neg (Armandpour et al., 2023, arXiv 2304.04968) as a GUIDER for SamplerCustomAdvanced. Guides "
                "from the empty prompt: D = D_empty + cfg * (pos - neg_scale * perp), where pos and neg are the "
                "positive and negative predictions minus the empty one and perp is the part of neg perpendicular to "
                "pos, so the negative prompt removes only what the positive does not ask for. Projection per sample "
                "(ComfyUI's PerpNegGuider sums over the whole batch). Cost: 3 model evaluations per step (positive, "
                "negative and empty in one batched call); 2 at neg_scale 0."),
            inputs=[
                io.Model.Input("model", tooltip="The model to sample with."),
                io.Conditioning.Input("positive", tooltip="What the image should show."),
                io.Conditioning.Input("negative", tooltip="What to avoid; only its part perpendicular to the "
                                                          "positive direction is used."),
                io.Conditioning.Input("empty_conditioning", tooltip="The empty prompt (CLIPTextEncode of \"\"): the "
                                                                    "baseline both directions are measured from."),
                io.Float.Input(CFG[0], default=CFG[1], min=CFG[2], max=CFG[3], step=0.1, round=0.01,
                               tooltip="Guidance scale w applied to the positive direction (ComfyUI default 8.0)."),
                io.Float.Input(NEG_SCALE[0], default=NEG_SCALE[1], min=NEG_SCALE[2], max=NEG_SCALE[3], step=0.01,
                               tooltip="Weight of the perpendicular negative (default 1.0). 0 = plain CFG against "
                                       "the empty prompt, without the negative's evaluation."),
            ],
            outputs=[io.Guider.Output(tooltip="The Perp-Neg guider, for SamplerCustomAdvanced.")],
            search_aliases=("perp-neg", "perpendicular negative prompt"),
        )

    @classmethod
    def execute(cls, model, positive, negative, empty_conditioning, cfg: float, neg_scale: float) -> io.NodeOutput:
        for name, value in (("positive", positive), ("negative", negative), ("empty_conditioning", empty_conditioning)):
            require_conditioning(NAME, name, value, model)
        cfg = check_number(NAME, CFG[0], cfg, CFG[2], CFG[3])
        neg_scale = check_number(NAME, NEG_SCALE[0], neg_scale, NEG_SCALE[2], NEG_SCALE[3])
        guider = PerpNegGuider(model)
        guider.set_conds(positive, negative, empty_conditioning)
        guider.set_cfg(cfg, neg_scale)
        return io.NodeOutput(guider)


class PerpNegModelPatch(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id=f"{PREFIX}PerpNeg",
            display_name=PATCH_NAME,
            category=f"{CATEGORY}/cfg",
            description=(
                "Perp-Neg (Armandpour et al., 2023, arXiv 2304.04968) as a model patch for the stock KSampler: "
                "D = D_empty + cfg * (pos - neg_scale * perp), with the KSampler's positive and negative prompts and "
                "the empty prompt given here; the KSampler cfg is Perp-Neg's scale. Only the part of the negative "
                "perpendicular to the positive direction is removed; projection per sample. Replaces the CFG result, "
                "so apply it before other post-CFG patches. Cost: 3 model evaluations per step (the empty prompt "
                "in a second call; the guider form batches all three), also at cfg 1."),
            inputs=[
                io.Model.Input("model", tooltip="The model to patch."),
                io.Conditioning.Input("empty_conditioning", tooltip="The empty prompt (CLIPTextEncode of \"\"): the "
                                                                    "baseline both directions are measured from."),
                io.Float.Input(NEG_SCALE[0], default=NEG_SCALE[1], min=NEG_SCALE[2], max=NEG_SCALE[3], step=0.01,
                               tooltip="Weight of the perpendicular negative (default 1.0); 0 = CFG against the "
                                       "empty prompt."),
            ],
            outputs=[io.Model.Output(tooltip="The model with Perp-Neg in place of its CFG step.")],
            search_aliases=("perp-neg", "perpendicular negative prompt"),
        )

    @classmethod
    def execute(cls, model, empty_conditioning, neg_scale: float) -> io.NodeOutput:
        require_conditioning(PATCH_NAME, "empty_conditioning", empty_conditioning, model)
        neg_scale = check_number(PATCH_NAME, NEG_SCALE[0], neg_scale, NEG_SCALE[2], NEG_SCALE[3])
        patched = model.clone()
        PerpNegPostCFG(empty_conditioning, neg_scale, PATCH_NAME).install(patched)
        return io.NodeOutput(patched)
