"""Shared parts of the perturbation-guidance nodes (PAG, SEG, ...): layer choice, schedule and installation."""
from comfy_api.latest import io

from ..attention_patches.attention_call import Perturbation
from ..attention_patches.hook import PerturbedPass
from ..attention_patches.families import layer_map
from ..attention_patches.layers import Layer, LayerMap
from ..guiders.extra_pass import ExtraCondPass
from ..guiders.perturbed_guidance import PerturbedGuidancePostCFG
from .common import NodeInputError
from .schedule import scale_schedule_input

LAYERS_TOOLTIP = ("Self-attention layers to perturb; empty = this model's default. UNets: 'middle' (default, the "
                  "paper's mid block), 'input 4-8', 'output 0:1'. Flux/Chroma/Flux2: 'double 0-3', 'single 10' "
                  "(default 'double 1'). SD3/Qwen-Image/Lumina2/Wan: 'block 1' (default). Comma-separate several; a "
                  "name the model lacks gets an error listing the layers it has.")


def schedule_input(scale: str = "scale"):
    return scale_schedule_input(f"Optional Guidance Schedule: {scale} * f(t) inside its sigma interval; outside it "
                                "the extra pass is not run.")


def layers_input(tooltip: str = LAYERS_TOOLTIP):
    """The 'layers' text input of a node that patches chosen layers or blocks; empty = the method's default."""
    return io.String.Input("layers", default="", multiline=False, tooltip=tooltip)


def layer_and_schedule_inputs() -> list:
    return [layers_input(), schedule_input()]


def resolve_layers(model, node: str, layers: str, default=None) -> tuple[LayerMap, list[Layer]]:
    """The model's layer map and the chosen layers, or a NodeInputError naming the node; empty layers means
    default(lmap) when a method has its own default, else the model's."""
    try:
        lmap = layer_map(model)
    except ValueError as error:
        raise NodeInputError(f"{node}: {error}") from None
    check_supported(lmap, node)
    try:
        return lmap, lmap.parse(layers if (layers or "").strip() or default is None else default(lmap))
    except ValueError as error:
        raise NodeInputError(f"{node}: {error}") from None


def check_supported(lmap: LayerMap, node: str) -> None:
    """A NodeInputError naming the node when the model's family adapter refuses the node's method."""
    method = node.removesuffix(" (Guidance Zoo)")
    if not lmap.family.supports(method):
        raise NodeInputError(f"{node}: the 'model' input is a {lmap.model_name} model, where {method} has no place: "
                             f"{lmap.family.refusal(method)}. The README's support matrix lists the methods that "
                             "run on it.")


def patch_with_perturbation(model, node: str, scale: float, chosen: tuple[LayerMap, list[Layer]], schedule,
                            perturbation: Perturbation):
    """Clone the model and add D + scale * (D_c - D_perturbed) with one batched extra pass; scale 0 adds nothing."""
    lmap, layers = chosen
    return patch_with_pass(model, scale, PerturbedPass(lmap, layers, perturbation, node), schedule)


def patch_with_pass(model, scale: float, perturbed_pass: PerturbedPass, schedule,
                    post_cfg=PerturbedGuidancePostCFG):
    """Clone the model and add post_cfg(extra pass, scale, schedule), the pass batched into the cond/uncond call;
    scale 0 adds nothing. schedule needs only factor(model_options, sigma); outside it the pass is not run."""
    patched = model.clone()
    if scale == 0:
        return patched
    active = None
    if schedule is not None:
        def active(model_options, sigma):
            return schedule.factor(model_options, sigma) > 0
    extra_pass = ExtraCondPass(perturbed_pass, active)
    extra_pass.install(patched)
    patched.set_model_sampler_post_cfg_function(post_cfg(extra_pass, scale, schedule))
    return patched
