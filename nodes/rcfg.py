"""StreamDiffusion residual CFG node (Kodaira et al., arXiv 2312.12491)."""
from comfy_api.latest import io

from ..guiders.rcfg import MODES, RCFG
from .common import Number, check_choice, model_patch_schema, patched
from .method_info import MethodInfo, Node

NAME = "StreamDiffusion RCFG (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="StreamDiffusion RCFG", nodes=(Node("RCFG"),),
    paper="Kodaira et al., arXiv 2312.12491",
    fixes="uncond pass cost in few-step (LCM/Turbo) img2img streams",
    evaluations="self: 1; initialize: 2 on the first step, then 1",
    models="all (eps/v: eps space; flow: velocity)",
    at_cfg_1="no effect",
    short="RCFG",
    claim="CFG-like guidance at 1 evaluation per step (uncond from the residual noise)")
DELTA = Number("delta", 1.0, 0.0, 1.0, "delta in eps_u = delta * eps_stock: how much of the stock noise stands in "
               "for the uncond prediction (StreamDiffusion default 1.0; 1 makes the uncond prediction exactly the "
               "reference, smaller values weaken the guidance). At most 1: above it the uncond estimate overshoots "
               "the reference and the latent grows without bound (|max| 1e5-1e8 at delta 10 in 4 steps).",
               step=0.01)


class ResidualCFG(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "RCFG", NAME, "nfe_savers",
            "Residual Classifier-Free Guidance from StreamDiffusion (Kodaira et al., arXiv 2312.12491). The uncond "
            "pass is not run: the uncond noise is delta times the 'stock' noise pointing from a reference to the "
            "current latent, then ordinary CFG with the KSampler's cfg. 'self' (Self-Negative): the reference is "
            "the sampler's input latent (img2img: the encoded image), 1 model evaluation per step. 'initialize' "
            "(Onetime-Negative): the first step runs the real negative prompt and its prediction is the reference "
            "for the rest of the run, 2 model evaluations on the first step, 1 after. Made for few-step LCM/Turbo "
            "img2img with a small cfg (paper: 1.2); in txt2img 'self' steers away from the empty latent, and over "
            "many steps or at a larger cfg the fixed reference over-guides: a run whose guided prediction grows 30x "
            "past its first step's size is stopped with an error saying so. No effect at cfg 1.",
            [io.Combo.Input("mode", options=list(MODES), default="self",
                            tooltip="self: reference = the input latent, never runs the negative. initialize: "
                                    "reference = the real uncond prediction of the first step."),
             DELTA.input()],
            "The model with residual CFG in place of its uncond pass.",
            search_aliases=("residual cfg", "streamdiffusion", "one pass cfg"))

    @classmethod
    def execute(cls, model, mode: str, delta: float) -> io.NodeOutput:
        return io.NodeOutput(patched(model, RCFG(check_choice(NAME, "mode", mode, MODES), DELTA.check(NAME, delta))))
