"""VSF node: Value Sign Flip (arXiv 2508.10931), negative prompts for few-step models at cfg 1."""
from comfy_api.latest import io

from ..attention_patches.negative_context import NegativeContext, installed
from ..attention_patches.vsf import vsf_cross_rule, vsf_joint_rule
from .common import NodeInputError, Number, model_patch_schema
from .method_info import MethodInfo, Node
from .negative_prompt import negative_context, negative_input

NAME = "VSF (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="VSF", nodes=(Node("VSF"),),
    paper="Guo & Du, ICLR 2026, arXiv 2508.10931",
    fixes="negative prompts on few-step models at cfg 1 (SD3.5 Large Turbo, Wan + CausVid)",
    evaluations="1 at cfg 1, 2 with CFG (SD3: in two model calls)",
    models="SD3/SD3.5, Wan, SD1.5, SDXL",
    at_cfg_1="VSF alone")
SCALE = Number("scale", 3.0, 0.0, 50.0, "How strongly the negative prompt's attention values are subtracted: they "
               "enter with sign flipped and multiplied by this (official SD3.5 Large Turbo default 3.0; its README "
               "uses 3.5; the Wan examples 0.8-1.8). 0 turns VSF off and costs nothing.", step=0.05)
OFFSET = Number("offset", 0.08, -5.0, 5.0, "Logit offset subtracted from the flipped negative tokens for the image "
                "tokens (official SD3.5 default 0.08; the Wan examples use 0.1-0.8, the official Wan node -0.1).",
                step=0.01)
NEGATIVE_TOOLTIP = ("The VSF negative prompt: wire a CLIP Text Encode of what to remove. Meant for cfg 1 on few-step "
                    "models (SD3.5 Large Turbo, Wan with a CausVid/lightning LoRA), where the KSampler negative does "
                    "nothing.")
REFUSAL = ("VSF needs the paper's layouts: joint attention as SD3's or a text cross-attention. The authors found it "
           "does not work well on Flux dev; Flux2, Chroma, Qwen-Image and Lumina2 have no VSF layout.")


class VSF(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "VSF", NAME, "negative_prompt",
            "Value Sign Flip (Guo & Du, arXiv 2508.10931; official code weathon/VSF). The negative prompt's tokens "
            "join the attention of the image tokens with their values multiplied by -scale and their logits lowered "
            "by offset, so what they describe is subtracted where it is attended to. SD3/SD3.5: the official token "
            "layout (text = prompt, negative, negative; the flipped copy is seen only by image tokens, the second "
            "negative copy only by itself and the image) inside the one positive row; Wan and SD1.5/SDXL: the "
            "negative tokens appended to the cross-attention context. Only the positive prompt's rows are changed. "
            "Cost in model evaluations per step: 1 at cfg 1, 2 with CFG; the text gets the negative's tokens longer.",
            [negative_input(NEGATIVE_TOOLTIP), SCALE.input(), OFFSET.input()],
            "The model with VSF inside its attention layers.",
            search_aliases=("value sign flip", "negative prompt at cfg 1", "negative prompt for few-step models"))

    @classmethod
    def execute(cls, model, negative, scale: float, offset: float) -> io.NodeOutput:
        scale, offset = SCALE.check(NAME, scale), OFFSET.check(NAME, offset)
        lmap, negative = negative_context(model, NAME, negative, "VSF", REFUSAL)
        if lmap.joint and any(not hook.inline_copies for hook in installed(model)):
            raise NodeInputError(f"{NAME}: this {lmap.model_name} model already has NAG, and on joint attention VSF "
                                 "replaces the attention of the positive rows that NAG guides, so NAG would do "
                                 "nothing; apply VSF first and NAG after it (model -> VSF -> NAG -> sampler)")
        patched = model.clone()
        if scale == 0.0:
            return io.NodeOutput(patched)
        NegativeContext(lmap, negative, NAME, vsf_cross_rule(scale, offset), vsf_joint_rule(scale, offset),
                        inline_copies=2, trim_zero_padding=True).install(patched)
        return io.NodeOutput(patched)
