"""PLADIS node: sparse cross-attention extrapolation (arXiv 2503.07677) on every family, no extra pass."""
from comfy_api.latest import io

from ..attention_patches.cross_attention import install_cross_attention
from ..attention_patches.families import layer_map
from ..attention_patches.pladis import pladis_cross_attention
from .common import NodeInputError, Number, model_patch_schema
from .method_info import MethodInfo, Node
from .perturbation import check_supported, layers_input

NAME = "PLADIS (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="PLADIS", nodes=(Node("PLADIS"),),
    paper="Kim & Sim, arXiv 2503.07677",
    fixes="text alignment and detail, also on guidance-distilled models (sparse cross-attention)",
    evaluations="no extra evaluation: 2 with CFG, 1 at cfg 1",
    models="every family (joint-attention families: a variant on the image-to-text part)",
    at_cfg_1="PLADIS alone",
    claim="better text alignment and quality at no extra evaluation")
SCALE = Number("scale", 2.0, 0.0, 10.0, "lambda: attention = lambda * entmax(S) + (1 - lambda) * softmax(S) "
               "(paper default 2.0; 1 = sparse attention alone). 0 is plain attention and costs nothing.")
ALPHA = Number("alpha", 1.5, 1.1, 2.0, "Sparsity of alpha-entmax: 1.5 = entmax-1.5 (paper default), 2.0 = "
               "sparsemax (the paper's other option); both exact by sorting, other values by bisection.")
LAYERS_TOOLTIP = ("Cross-attention layers to change; empty = all of them (the paper's setting). UNets: 'input 4-8', "
                  "'middle', 'output 0:1'; Flux/Chroma/Flux2: 'double 0-18, single 3'; SD3/Qwen-Image/Lumina2/Wan: "
                  "'block 0-9'. Comma-separate several.")


class PLADIS(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "PLADIS", NAME, "attention",
            "PLADIS (Kim & Sim, ICCV 2025, arXiv 2503.07677). In every text cross-attention layer the attention "
            "weights become lambda * alpha-entmax(S) + (1 - lambda) * softmax(S), extrapolating from dense towards "
            "sparse attention computed from the same logits. No extra pass: it changes every branch of whatever "
            "guidance runs (CFG, PAG, ...) and works on guidance-distilled models at cfg 1. SD1.5, SDXL: attn2; "
            "Wan and other cross-attention DiTs: their cross-attention. Joint-attention models (SD3, Flux, "
            "Qwen-Image, ...) have no "
            "separate cross-attention: there the image tokens' weights on the text tokens are treated as the "
            "cross-attention (our variant: their text share is kept and redistributed by the rule; image-image "
            "attention is unchanged). Computed in fp32, query rows in chunks. Cost: no extra pass, the plain number "
            "of model evaluations per step: 2 with CFG, 1 at cfg 1.",
            [SCALE.input(), ALPHA.input(),
             layers_input(LAYERS_TOOLTIP)],
            "The model with PLADIS cross-attention.",
            search_aliases=("sparse attention guidance", "entmax attention"))

    @classmethod
    def execute(cls, model, scale: float, alpha: float, layers: str) -> io.NodeOutput:
        scale, alpha = SCALE.check(NAME, scale), ALPHA.check(NAME, alpha)
        try:
            lmap = layer_map(model)
        except ValueError as error:
            raise NodeInputError(f"{NAME}: {error}") from None
        check_supported(lmap, NAME)
        try:
            chosen = lmap.parse(layers) if (layers or "").strip() else lmap.layers
            patched = model.clone()
            if scale != 0:
                install_cross_attention(patched, lmap, chosen, pladis_cross_attention(scale, alpha), NAME)
        except ValueError as error:
            raise NodeInputError(f"{NAME}: {error}") from None
        return io.NodeOutput(patched)
