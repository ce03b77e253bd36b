"""SAG node: Self-Attention Guidance (arXiv 2210.00939) on UNets."""
from comfy_api.latest import io

from ..attention_patches.families import layer_map
from ..guiders.sag import SAGCapture, SAGPostCFG
from .common import NodeInputError, Number, model_patch_schema
from .method_info import MethodInfo, Node
from .perturbation import schedule_input

NAME = "SAG (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="SAG", nodes=(Node("SAG"),),
    paper="Hong et al., ICCV 2023, arXiv 2210.00939",
    fixes="structure and detail: steers away from a prediction blurred where the self-attention looks most",
    evaluations="3 (2 at cfg 1), in two calls (the blurred pass needs the first call's output)",
    models="SD1.5, SDXL (UNets; DiTs refused)",
    at_cfg_1="SAG alone (on the cond)",
    claim="better sample quality (FID) of unconditional and conditional models; adds to CFG")
SCALE = Number("scale", 0.5, 0.0, 10.0, "SAG scale s: D = D_cfg + s * (blurred - D(blurred, re-noised)). 0.5 (the "
               "default of ComfyUI's core SAG node; diffusers uses 0.75). 0 turns SAG off and costs nothing.")
BLUR_SIGMA = Number("blur_sigma", 2.0, 0.0, 10.0, "Standard deviation, in latent pixels, of the 9-tap Gaussian "
                    "blur applied where the middle block's self-attention is above average (ComfyUI's default 2.0; "
                    "diffusers 1.0). 0 means no blur, which turns SAG off and costs nothing.", step=0.1)


def sag_layer(model):
    """The model's layer map and the first layer of its family's default (the middle block's first self-attention
    on UNets, as in the paper), or a NodeInputError for a family SAG does not apply to."""
    try:
        lmap = layer_map(model)
    except ValueError as error:
        raise NodeInputError(f"{NAME}: {error}") from None
    if not lmap.family.supports("SAG"):
        raise NodeInputError(
            f"{NAME}: the 'model' input is a {lmap.model_name} model ({lmap.family.label}); SAG needs the "
            "self-attention map of a UNet's middle block over the latent grid, so it runs on UNets (SD1.5, SDXL) "
            "only. Connect a UNet model, or use PAG or SEG (Guidance Zoo), which run on every family.")
    return lmap, lmap.parse(lmap.default)[0]


class SAG(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "SAG", NAME, "perturbation",
            "Self-Attention Guidance (Hong et al., ICCV 2023, arXiv 2210.00939). Takes the self-attention map of "
            "the middle block in the uncond pass, blurs the uncond prediction where that map is above average, "
            "re-noises it to the current step with the uncond's own noise, runs the uncond again on it and steers "
            "away from the result: D = D_cfg + scale * (blurred - D_u(blurred, re-noised)). At cfg 1 it acts on the "
            "cond the same way. The map is captured in the step's own model call (no N x N matrix is kept); the "
            "blurred pass needs that call's output, so it is a second call, batched over the samples. Cost: 3 "
            "model evaluations per step with CFG, 2 at cfg 1. UNets (SD1.5, SDXL) only.",
            [SCALE.input(), BLUR_SIGMA.input(), schedule_input()],
            "The model with SAG added after its CFG step.",
            search_aliases=("self-attention guidance", "sag"))

    @classmethod
    def execute(cls, model, scale: float, blur_sigma: float, scale_schedule=None) -> io.NodeOutput:
        scale, blur_sigma = SCALE.check(NAME, scale), BLUR_SIGMA.check(NAME, blur_sigma)
        lmap, layer = sag_layer(model)
        patched = model.clone()
        if scale == 0 or blur_sigma == 0:
            return io.NodeOutput(patched)
        active = None
        if scale_schedule is not None:
            def active(model_options, sigma):
                return scale_schedule.factor(model_options, sigma) > 0
        capture = SAGCapture(lmap, layer, NAME, active)
        capture.install(patched)
        patched.set_model_sampler_post_cfg_function(SAGPostCFG(capture, scale, blur_sigma, scale_schedule))
        return io.NodeOutput(patched)
