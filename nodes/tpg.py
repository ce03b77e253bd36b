"""TPG node: Token Perturbation Guidance (arXiv 2506.10036) on every architecture."""
from comfy_api.latest import io

from ..attention_patches.blocks import BlockPass
from ..attention_patches.layers import LayerMap
from ..attention_patches.tpg import TokenShuffle
from .common import Number, model_patch_schema, seed_number
from .method_info import MethodInfo, Node
from .perturbation import layers_input, patch_with_pass, resolve_layers, schedule_input

NAME = "TPG (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="TPG", nodes=(Node("TPG"),),
    paper="Rajabi et al., NeurIPS 2025, arXiv 2506.10036",
    fixes="CFG-like quality and alignment without a condition (block input tokens shuffled)",
    evaluations="3 (2 at cfg 1), one batched call",
    models="every family",
    at_cfg_1="TPG alone",
    claim="CFG-like quality and alignment without a condition; adds to CFG")
SCALE = Number("scale", 3.0, 0.0, 100.0, "TPG scale s (official default 3.0). 0 turns TPG off and costs nothing.")
SEED = seed_number("the token permutations (a new one per block call and step)")
LAYERS_TOOLTIP = ("Transformer blocks whose input tokens are shuffled; empty = the official SDXL blocks "
                  "'input 7:2-9, input 8' (diffusers d6-d23), on SD1.5 'input 7-8', on DiTs 'double 1' / 'block 1'. "
                  "UNet names pick transformer blocks ('input 7:2' = block 7, transformer 2). Comma-separate several.")


def tpg_default(lmap: LayerMap) -> str:
    """The family's TPG layers (the official SDXL ones on UNets)."""
    return lmap.family.tpg_layers(lmap)


class TPG(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "TPG", NAME, "perturbation",
            "Token Perturbation Guidance (Rajabi et al., NeurIPS 2025, arXiv 2506.10036). Runs the conditional "
            "prediction again with the input tokens of chosen transformer blocks randomly shuffled (a "
            "norm-preserving permutation, new for every block call, not undone) and steers away from it: "
            "D = D_cfg + scale * (D_c - D_TPG). Only image tokens are shuffled, never text tokens; video tokens are "
            "shuffled across all frames. Works without CFG (cfg 1) too. The extra pass runs in the same batched "
            "model call as cond and uncond. Cost: 3 model evaluations per step with CFG, 2 at cfg 1.",
            [SCALE.input(), layers_input(LAYERS_TOOLTIP), SEED.input(),
             schedule_input()],
            "The model with TPG added after its CFG step.",
            search_aliases=("token perturbation guidance", "shuffled tokens"))

    @classmethod
    def execute(cls, model, scale: float, layers: str, seed: int, scale_schedule=None) -> io.NodeOutput:
        scale, seed = SCALE.check(NAME, scale), SEED.check(NAME, seed)
        lmap, chosen = resolve_layers(model, NAME, layers, tpg_default)
        return io.NodeOutput(patch_with_pass(model, scale, BlockPass(lmap, chosen, TokenShuffle(seed), NAME),
                                             scale_schedule))
