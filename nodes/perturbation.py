"""Shared parts of the perturbation-guidance nodes (PAG, SEG, ...): layer choice, schedule and installation."""
from comfy_api.latest import io

from ..attention_patches.hook import Perturbation, PerturbedPass
from ..attention_patches.layers import Layer, LayerMap, layer_map
from ..guiders.extra_pass import ExtraCondPass
from ..guiders.perturbed_guidance import PerturbedGuidancePostCFG
from .common import NodeInputError
from .schedule import SCHEDULE_TYPE

LAYERS_TOOLTIP = ("Self-attention layers to perturb; empty = this model's default. UNets: 'middle' (default, the "
                  "paper's mid block), 'input 4-8', 'output 0:1'. Flux/Chroma/Flux2: 'double 0-3', 'single 10' "
                  "(default 'double 1'). SD3/Qwen-Image/Lumina2/Wan: 'block 1' (default). Comma-separate several.")


def layer_and_schedule_inputs() -> list:
    return [io.String.Input("layers", default="", multiline=False, tooltip=LAYERS_TOOLTIP),
            SCHEDULE_TYPE.Input("scale_schedule", optional=True,
                                tooltip="Optional Guidance Schedule: scale * f(t) inside its sigma interval; outside "
                                        "it the extra pass is not run.")]


def resolve_layers(model, node: str, layers: str) -> tuple[LayerMap, list[Layer]]:
    """The model's layer map and the chosen layers, or a NodeInputError naming the node."""
    try:
        lmap = layer_map(model)
        return lmap, lmap.parse(layers)
    except ValueError as error:
        raise NodeInputError(f"{node}: {error}") from None


def patch_with_perturbation(model, node: str, scale: float, chosen: tuple[LayerMap, list[Layer]], schedule,
                            perturbation: Perturbation):
    """Clone the model and add D + scale * (D_c - D_perturbed) with one batched extra pass; scale 0 adds nothing."""
    lmap, layers = chosen
    patched = model.clone()
    if scale == 0:
        return patched
    active = None
    if schedule is not None:
        def active(model_options, sigma):
            return schedule.factor(model_options, sigma) > 0
    extra_pass = ExtraCondPass(PerturbedPass(lmap, layers, perturbation, node), active)
    extra_pass.install(patched)
    patched.set_model_sampler_post_cfg_function(PerturbedGuidancePostCFG(extra_pass, scale, schedule))
    return patched
