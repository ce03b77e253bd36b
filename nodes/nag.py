"""NAG node: Normalized Attention Guidance (arXiv 2505.21179), a negative prompt inside attention, also at cfg 1."""
from comfy_api.latest import io

from ..attention_patches.nag import nag_cross_rule, nag_joint_rule
from ..attention_patches.negative_context import NegativeContext
from .common import Number, model_patch_schema
from .method_info import MethodInfo, Node
from .negative_prompt import negative_context, negative_input

NAME = "NAG (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="NAG", nodes=(Node("NAG"),),
    paper="Chen et al., arXiv 2505.21179",
    fixes="negative prompts at cfg 1 (distilled Flux, Wan/Qwen lightning) and with CFG",
    evaluations=("text cross-attention families (SD1.5, SDXL, Wan, ...): 1 at cfg 1, 2 with CFG; joint-attention "
                 "families (SD3, Flux, Qwen-Image, Lumina2, ...): 2 at cfg 1, 3 with CFG (one extra batched row)"),
    models="every family",
    at_cfg_1="NAG alone")
SCALE = Number("scale", 5.0, 1.0, 100.0, "NAG scale phi: how far the attention output is pushed away from the "
               "negative prompt's (official ComfyUI-NAG default 5). 1 turns NAG off and costs nothing.", step=0.1)
TAU = Number("tau", 2.5, 1.0, 100.0, "Normalization threshold tau: the largest allowed ratio between the L1 norm of "
             "the guided and the positive attention output per token (official default 2.5; Wan module 3.5).")
ALPHA = Number("alpha", 0.25, 0.0, 1.0, "Blend alpha between the normalized guided output (1) and the positive "
               "output (0) (official default 0.25; Wan module 0.5).")
SIGMA_END = Number("sigma_end", 0.0, 0.0, 1000.0, "NAG runs only while sigma >= sigma_end (official nag_sigma_end); "
                   "0 = every step. Steps below it cost no extra evaluation.", step=0.001)
NEGATIVE_TOOLTIP = ("The NAG negative prompt: wire a CLIP Text Encode of what to avoid. It works inside attention, "
                    "so it acts at cfg 1 on distilled models (Flux, Wan/Qwen lightning) where the KSampler negative "
                    "does nothing; the KSampler negative is still used by CFG when cfg > 1.")
REFUSAL = "Its attention has no place where the text enters that NAG can extrapolate."


class NAG(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "NAG", NAME, "negative_prompt",
            "Normalized Attention Guidance (Chen et al., arXiv 2505.21179; official ComfyUI-NAG by ChenDarYen). A "
            "negative prompt applied inside every cross/joint attention layer: Z = phi Z+ - (phi - 1) Z-, the L1 norm "
            "ratio to Z+ clamped at tau per token, blended with Z+ by alpha. Works at cfg 1 on distilled models and "
            "with CFG; only the positive prompt's rows are guided, every sample of a batch with its own negative. "
            "Cost in model evaluations per step: 1 at cfg 1 (2 with CFG) where the text enters by cross-attention "
            "(SD1.5/SDXL, Wan, ...: the negative tokens join the cross-attention context); 2 at cfg 1 (3 with CFG) "
            "on joint-attention models (SD3, Flux, Qwen-Image, Lumina2, ...), where the negative text stream runs as "
            "one extra batch row in the same model call. The README's support matrix lists every family.",
            [negative_input(NEGATIVE_TOOLTIP), SCALE.input(), TAU.input(), ALPHA.input(),
             SIGMA_END.input()],
            "The model with NAG inside its attention layers.",
            search_aliases=("normalized attention guidance", "negative prompt at cfg 1", "negative prompt for flux"))

    @classmethod
    def execute(cls, model, negative, scale: float, tau: float, alpha: float, sigma_end: float) -> io.NodeOutput:
        scale, tau, alpha = SCALE.check(NAME, scale), TAU.check(NAME, tau), ALPHA.check(NAME, alpha)
        sigma_end = SIGMA_END.check(NAME, sigma_end)
        lmap, negative = negative_context(model, NAME, negative, "NAG", REFUSAL)
        patched = model.clone()
        if scale == 1.0 or alpha == 0.0:
            return io.NodeOutput(patched)
        NegativeContext(lmap, negative, NAME, nag_cross_rule(scale, tau, alpha), nag_joint_rule(scale, tau, alpha),
                        sigma_end).install(patched)
        return io.NodeOutput(patched)
