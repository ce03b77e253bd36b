"""APG node: Adaptive Projected Guidance (arXiv 2410.02416)."""
from comfy_api.latest import io

from ..guiders.apg import APGRule
from .common import CATEGORY, PREFIX, check_number

NAME = "APG (Guidance Zoo)"
ETA = ("eta", 0.0, -10.0, 10.0)
THRESHOLD = ("norm_threshold", 15.0, 0.0, 1000.0)
MOMENTUM = ("momentum", -0.5, -5.0, 1.0)


class APG(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return io.Schema(
            node_id=f"{PREFIX}APG",
            display_name=NAME,
            category=f"{CATEGORY}/cfg",
            description=(
                "Adaptive Projected Guidance (Sadat, Hilliges, Weber, ICLR 2025, arXiv 2410.02416). Splits the CFG "
                "update into parts parallel and orthogonal to the conditional prediction, down-weights the parallel "
                "part that causes oversaturation, clamps its norm and adds reverse momentum, so high CFG scales stay "
                "clean. Uses the paper's rule D = D_c + (cfg - 1) * G' (ComfyUI's core APG node equals this at cfg + 1). "
                "Cost: 2 model evaluations per step, like CFG; no effect at cfg 1. Stacks with other pre/post-CFG "
                "patches; later patches see the rewritten cond prediction."),
            inputs=[
                io.Model.Input("model", tooltip="The model to patch. Any architecture; image or video latents."),
                io.Float.Input(ETA[0], default=ETA[1], min=ETA[2], max=ETA[3], step=0.01,
                               tooltip="Weight of the guidance component parallel to the conditional prediction. "
                                       "0 (paper default) drops it; 1 keeps it, as plain CFG does."),
                io.Float.Input(THRESHOLD[0], default=THRESHOLD[1], min=THRESHOLD[2], max=THRESHOLD[3], step=0.1,
                               tooltip="Largest allowed L2 norm of the guidance per sample (over all latent dims). "
                                       "0 disables the clamp. Depends on latent size; 15 is the paper's SDXL-class value, "
                                       "smaller values (2.5-5) act more strongly."),
                io.Float.Input(MOMENTUM[0], default=MOMENTUM[1], min=MOMENTUM[2], max=MOMENTUM[3], step=0.01,
                               tooltip="Momentum beta of the running guidance M = G + beta * M. Negative values "
                                       "(paper: -0.5) push away from past directions; 0 disables it. Reset every run."),
            ],
            outputs=[io.Model.Output(tooltip="The model with APG applied to its CFG step.")],
        )

    @classmethod
    def execute(cls, model, eta: float, norm_threshold: float, momentum: float) -> io.NodeOutput:
        values = [check_number(NAME, *spec[:1], value, *spec[2:])
                  for spec, value in ((ETA, eta), (THRESHOLD, norm_threshold), (MOMENTUM, momentum))]
        patched = model.clone()
        APGRule(*values).install(patched)
        return io.NodeOutput(patched)
