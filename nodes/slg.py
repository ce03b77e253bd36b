"""Skip-Layer Guidance node (SD3.5's SLG, ComfyUI core's SkipLayerGuidanceDiT) on every architecture."""
from functools import partial

from comfy_api.latest import io

from ..attention_patches.blocks import BlockPass, BlockPerturbation
from ..attention_patches.layers import LayerMap
from ..core.run_steps import sigma_to_percent
from ..guiders.slg import SigmaWindow, SkipLayerPostCFG
from .common import NodeInputError, Number, model_patch_schema
from .method_info import MethodInfo, Node
from .perturbation import layers_input, patch_with_pass, resolve_layers, schedule_input

NAME = "Skip-Layer Guidance (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="Skip-Layer Guidance", nodes=(Node("SLG"),),
    paper="Stability AI's SD3.5 SLG (after PAG, arXiv 2403.17377); ComfyUI core `SkipLayerGuidanceDiT`",
    fixes="structure and anatomy on DiTs (chosen blocks skipped in the extra pass)",
    evaluations="3 inside its start/end range (2 at cfg 1), one batched call; 2 outside",
    models="every family (core SLG: DiTs only)",
    at_cfg_1="SLG alone",
    short="SLG",
    claim_label="Skip-layer guidance (SD3.5)",
    claim="better structure/anatomy than CFG alone")
SCALE = Number("scale", 3.0, 0.0, 100.0, "SLG scale s (ComfyUI core and SD3.5 default 3.0). 0 turns SLG off and "
               "costs nothing.", step=0.1)
START = Number("start_percent", 0.01, 0.0, 1.0, "Start of the active range as a fraction of the schedule (core "
               "default 0.01); outside the range the extra pass is not run.", step=0.001)
END = Number("end_percent", 0.15, 0.0, 1.0, "End of the active range (core default 0.15: SLG acts on the early, "
             "structural steps only).", step=0.001)
MIN_STEPS = Number("min_steps", 1, 0, 1000, "Act on at least this many steps: when the run's schedule puts fewer in "
                   "the start/end range (a 4-8 step Turbo, Lightning or LCM run puts none in 0.01-0.15), the steps "
                   "nearest to the range act as well, and the log says so once per run. 0 = the range only, as "
                   "ComfyUI core's SLG does.", step=1, integer=True)
RESCALE = Number("rescaling_scale", 0.0, 0.0, 10.0, "Rescale the result towards the cond prediction's std (core's "
                 "rescaling_scale; 0 = off). Taken per sample.")
LAYERS_TOOLTIP = ("Blocks to skip; empty = blocks 7, 8, 9 of each stack (core's default: 'block 7-9' on SD3/Wan/"
                  "Qwen-Image/Lumina2, 'double 7-9, single 7-9' on Flux/Chroma/Flux2), or 'double 1'/'block 1' on "
                  "models with fewer blocks; on UNets 'middle' (the transformer blocks of the mid block; 'input 7:2' "
                  "names one transformer block). Comma-separate several.")


def slg_default(lmap: LayerMap) -> str:
    """Core SLG's layers 7, 8, 9 of every stack the model has; the mid block's transformer blocks on UNets."""
    return lmap.family.slg_layers(lmap)


class SkipLayerGuidance(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "SLG", NAME, "perturbation",
            "Skip-Layer Guidance (Stability AI's SD3.5 SLG, after Perturbed-Attention Guidance, arXiv 2403.17377). "
            "Runs the conditional prediction again with chosen blocks skipped (each returns its input) and steers "
            "away from it: D = D_cfg + scale * (D_c - D_skip), inside the start/end range. Equals ComfyUI's "
            "SkipLayerGuidanceDiT on the DiTs it supports, and also works on SD1.5/SDXL (transformer blocks) and "
            "Lumina2, where the core node does nothing. The extra pass runs in the same batched model call as cond "
            "and uncond. Cost: 3 model evaluations per step with CFG inside the range (2 at cfg 1), 2 (1) outside; "
            "on few-step "
            "schedules whose steps all miss the range it acts on the nearest step (min_steps).",
            [SCALE.input(), layers_input(LAYERS_TOOLTIP), START.input(),
             END.input(), RESCALE.input(), MIN_STEPS.input(),
             schedule_input()],
            "The model with SLG added after its CFG step.",
            search_aliases=("skip layer guidance", "sd3.5 skip layer", "anatomy"))

    @classmethod
    def execute(cls, model, scale: float, layers: str, start_percent: float, end_percent: float,
                rescaling_scale: float, min_steps: int = 1, scale_schedule=None) -> io.NodeOutput:
        scale = SCALE.check(NAME, scale)
        start, end = START.check(NAME, start_percent), END.check(NAME, end_percent)
        if start > end:
            raise NodeInputError(f"{NAME}: start_percent ({start}) must not be after end_percent ({end})")
        lmap, chosen = resolve_layers(model, NAME, layers, slg_default)
        sampling = model.get_model_object("model_sampling")
        window = SigmaWindow(float(sampling.percent_to_sigma(start)), float(sampling.percent_to_sigma(end)),
                             scale_schedule, NAME, (start, end), partial(sigma_to_percent, sampling),
                             int(MIN_STEPS.check(NAME, min_steps)))
        rescale = RESCALE.check(NAME, rescaling_scale)

        def post_cfg(extra_pass, s, schedule):
            return SkipLayerPostCFG(extra_pass, s, schedule, rescale)
        return io.NodeOutput(patch_with_pass(model, scale, BlockPass(lmap, chosen, BlockPerturbation(), NAME),
                                             window, post_cfg))
