"""S2-Guidance node: Stochastic Self-Guidance (arXiv 2508.12880) on every architecture."""
from comfy_api.latest import io

from ..attention_patches.blocks import BlockPass
from ..attention_patches.layers import LayerMap
from ..attention_patches.s2 import RandomBlockDrop
from .common import NodeInputError, Number, model_patch_schema, seed_number
from .method_info import MethodInfo, Node
from .perturbation import layers_input, patch_with_pass, resolve_layers, schedule_input

NAME = "S2-Guidance (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="S2-Guidance", nodes=(Node("S2Guidance"),),
    paper="Chen et al., ICLR 2026, arXiv 2508.12880",
    fixes="CFG's sub-optimal predictions (a random block-dropped sub-network as the weak model)",
    evaluations="3 (2 at cfg 1), one batched call",
    models="every family",
    at_cfg_1="S2 alone",
    claim="corrects CFG's sub-optimal predictions, better quality than CFG")
OMEGA = Number("omega", 1.0, 0.0, 100.0, "S2 scale omega: D = D_cfg + omega * (D_c - D_dropped). 0 turns S2 off and "
               "costs nothing. (No official code; see the README on what is verified.)")
DROP = Number("drop_ratio", 0.1, 0.01, 0.5, "Fraction of the candidate blocks dropped per step (at least one); "
              "about 0.1 is the value reported for the paper.", step=0.01)
SEED = seed_number("the random block choice (a new subset every step)")
LAYERS_TOOLTIP = ("Candidate blocks that may be dropped; empty = every block except the first and the last (which "
                  "may not be dropped). Names as for SLG: 'block 2-20', 'double 1-18, single 0-36', UNet "
                  "transformer blocks 'middle', 'output 0:1'.")


def s2_default(lmap: LayerMap) -> str:
    """Every block but the first and the last; a model with only two blocks (test stand-ins) offers both."""
    inner = lmap.layers[1:-1] or lmap.layers
    return ", ".join(layer.name for layer in inner)


class S2Guidance(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "S2Guidance", NAME, "perturbation",
            "S2-Guidance, stochastic self-guidance (Chen et al., ICLR 2026, arXiv 2508.12880). Each step runs the "
            "conditional prediction again through a stochastic sub-network, the model with a random subset of its "
            "blocks dropped (skipped), and steers away from it: D = D_cfg + omega * (D_c - D_dropped). Seeded, so a "
            "run is reproducible. Works on every family (UNets: their transformer blocks). The extra pass runs in "
            "the same batched model call as cond and uncond. Cost: 3 model evaluations per step with CFG, 2 at "
            "cfg 1.",
            [OMEGA.input(), DROP.input(), layers_input(LAYERS_TOOLTIP),
             SEED.input(),
             schedule_input("omega")],
            "The model with S2-Guidance added after its CFG step.",
            search_aliases=("stochastic sub-network guidance", "block dropping"))

    @classmethod
    def execute(cls, model, omega: float, drop_ratio: float, layers: str, seed: int,
                scale_schedule=None) -> io.NodeOutput:
        omega, ratio, seed = OMEGA.check(NAME, omega), DROP.check(NAME, drop_ratio), SEED.check(NAME, seed)
        lmap, chosen = resolve_layers(model, NAME, layers, s2_default)
        ends = {lmap.layers[0], lmap.layers[-1]} if len(lmap.layers) > 2 or layers.strip() else set()
        forbidden = [layer.name for layer in chosen if layer in ends]
        if forbidden:
            raise NodeInputError(f"{NAME}: the first and last blocks ({lmap.layers[0].name}, {lmap.layers[-1].name}) "
                                 f"may not be dropped; remove {', '.join(forbidden)} from 'layers'")
        return io.NodeOutput(patch_with_pass(model, omega, BlockPass(lmap, chosen, RandomBlockDrop(ratio, seed), NAME),
                                             scale_schedule))
