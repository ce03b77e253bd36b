"""S-CFG node: Semantic-aware Classifier-Free Guidance (arXiv 2404.05384) on UNets."""
from comfy_api.latest import io

from ..attention_patches.families import layer_map
from ..attention_patches.scfg import AttentionMapCapture, paper_layers
from ..guiders.scfg import SCFGCapture, SCFGRule
from .common import NodeInputError, Number, model_patch_schema, patched
from .method_info import MethodInfo, Node
from .perturbation import layers_input

NAME = "S-CFG (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="S-CFG", nodes=(Node("SCFG"),),
    paper="Shen et al., CVPR 2024, arXiv 2404.05384",
    fixes="CFG too strong in some regions, too weak in others (per-region scale from attention maps)",
    evaluations="2 (maps captured in the cond/uncond call)",
    models="SD1.5, SDXL (UNets; DiTs refused)",
    at_cfg_1="no effect",
    claim="per-region CFG scale, better quality/alignment than uniform CFG")
MIN_RATE = Number("min_rate", 0.8, 0.0, 10.0, "Lower clamp of the per-region CFG rate R (paper 0.8). Setting "
                  "min_rate = max_rate = 1 gives plain CFG.")
MAX_RATE = Number("max_rate", 3.0, 0.0, 10.0, "Upper clamp of the per-region CFG rate R (paper 3.0).")
MAX_GUIDANCE = Number("max_guidance", 15.0, 0.0, 100.0, "Largest effective scale cfg * R anywhere (paper 15, i.e. "
                      "R <= 15 / cfg).", step=0.1)
LAYERS_TOOLTIP = ("Attention layers whose self- and cross-attention maps make the semantic regions; empty = the "
                  "paper's: every layer at 1/4 and 1/8 of the latent size (SD1.5: 'input 7-8, middle, output 3-5'; "
                  "SDXL: 'input 7-8, middle, output 0-2'). Names as for PAG, e.g. 'output 3-5, middle'. Finer layers "
                  "cost more time (attention maps are computed in chunks, never as a whole N x N matrix).")


class SCFG(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "SCFG", NAME, "cfg",
            "Semantic-aware Classifier-Free Guidance (Shen et al., CVPR 2024, arXiv 2404.05384). CFG's strength "
            "differs between image regions; S-CFG segments the latent into the prompt tokens' regions from the "
            "conditional pass's cross-attention maps (smoothed by its self-attention maps) and rescales the guidance "
            "per region so every region gets the foreground's guidance strength: D = D_u + cfg * R * (D_c - D_u). "
            "The maps are captured in the step's own cond/uncond call: cost 2 model evaluations per step, like CFG; "
            "no effect at cfg 1. UNets with cross-attention (SD1.5, SDXL) only. Stacks with other pre/post-CFG "
            "patches in node order.",
            [MIN_RATE.input(), MAX_RATE.input(), MAX_GUIDANCE.input(),
             layers_input(LAYERS_TOOLTIP)],
            "The model with S-CFG applied to its CFG step.",
            search_aliases=("semantic-aware cfg", "per-region cfg"))

    @classmethod
    def execute(cls, model, min_rate: float, max_rate: float, max_guidance: float, layers: str) -> io.NodeOutput:
        low, high = MIN_RATE.check(NAME, min_rate), MAX_RATE.check(NAME, max_rate)
        cap = MAX_GUIDANCE.check(NAME, max_guidance)
        if low > high:
            raise NodeInputError(f"{NAME}: 'min_rate' ({low}) must not exceed 'max_rate' ({high})")
        try:
            lmap = layer_map(model)
            if not lmap.family.supports("S-CFG"):
                raise ValueError(f"S-CFG needs separate cross-attention maps over the prompt tokens, which only UNets "
                                 f"(SD1.5, SDXL) have; this {lmap.model_name} model uses joint/DiT attention")
            chosen = lmap.parse(layers) if (layers or "").strip() else paper_layers(model, lmap)
        except ValueError as error:
            raise NodeInputError(f"{NAME}: {error}") from None
        return io.NodeOutput(patched(model, SCFGRule(SCFGCapture(AttentionMapCapture(lmap, chosen)), low, high, cap)))
