"""SPG node: Style-Prompting Guidance (arXiv 2508.11476) with a style image latent."""
import torch
from comfy_api.latest import io

from ..attention_patches.spg import StyleKVInjection
from ..guiders.spg import StyleBranchPass, StyleGuidancePostCFG
from .common import NodeInputError, Number, model_patch_schema
from .method_info import MethodInfo, Node
from .perturbation import layers_input, resolve_layers

NAME = "SPG (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="SPG", nodes=(Node("SPG"),),
    paper="Liang et al., Pacific Graphics 2025, arXiv 2508.11476",
    fixes="style from a reference image without training or adapters (style K/V injected in a guidance branch)",
    evaluations="4 (style reference + style branch + cond + uncond), one batched call",
    models="every family",
    at_cfg_1="SPG with the uncond pass kept (4)")
SCALE = Number("spg_scale", 3.0, 0.0, 100.0, "SPG scale s in D = D_cfg + s * (D_style - D_u) (paper default 3.0). "
               "0 turns SPG off and costs nothing.")
DEFAULT_LAYERS = 6
LAYERS_TOOLTIP = ("Self-attention layers whose keys and values come from the style image; empty = the paper's: the "
                  "last 6 self-attention layers (SDXL: 'output 3-5', the highest-resolution decoder blocks; SD1.5: "
                  "'output 6-11'; on DiTs the last 6 blocks). Names as for PAG: 'output 3-5', 'double 0-3', "
                  "'single 10', 'block 2-5'; comma-separate several.")


def default_layers(lmap) -> str:
    return ", ".join(layer.name for layer in lmap.layers[-DEFAULT_LAYERS:])


class SPG(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "SPG", NAME, "style",
            "Style-Prompting Guidance (Liang et al., Pacific Graphics 2025, arXiv 2508.11476). Each step the style "
            "image's latent is noised to the current sigma and run with the negative prompt; a style branch (the "
            "generation with the negative prompt) uses the style's self-attention keys and values in the chosen "
            "layers, and the result steers the sample: D = D_u + cfg * (D_c - D_u) + spg_scale * (D_style - D_u). "
            "Works on UNets and DiTs. Style reference, style branch, cond and uncond run in one batched model call: "
            "cost 4 model evaluations per step (also at cfg 1, where the uncond pass is kept). The official "
            "per-step AdaIN of the latent is not done (a model patch cannot reach the sampler's latent).",
            [io.Latent.Input("style_latent", tooltip="The style reference: a style image through VAE Encode with this "
                             "model's VAE. Resized (center crop) to the generation's size if it differs; one image, "
                             "or one per image of the batch."),
             SCALE.input(),
             layers_input(LAYERS_TOOLTIP)],
            "The model with SPG added after its CFG step.",
            search_aliases=("style guidance", "style reference without ip-adapter"))

    @classmethod
    def execute(cls, model, style_latent, spg_scale: float, layers: str) -> io.NodeOutput:
        scale = SCALE.check(NAME, spg_scale)
        samples = style_latent.get("samples") if isinstance(style_latent, dict) else None
        if not isinstance(samples, torch.Tensor) or samples.ndim not in (4, 5):
            raise NodeInputError(f"{NAME}: 'style_latent' must be a LATENT from VAE Encode")
        if not torch.isfinite(samples).all():
            raise NodeInputError(f"{NAME}: 'style_latent' contains NaN or infinite values")
        channels = getattr(getattr(model.model, "latent_format", None), "latent_channels", samples.shape[1])
        if samples.shape[1] != channels:
            raise NodeInputError(f"{NAME}: 'style_latent' has {samples.shape[1]} channels but this model's latents "
                                 f"have {channels}; encode the style image with this model's VAE")
        lmap, chosen = resolve_layers(model, NAME, layers, default_layers)
        patched = model.clone()
        if scale == 0:
            return io.NodeOutput(patched)
        style_pass = StyleBranchPass(StyleKVInjection(lmap, chosen, None, NAME), samples.detach().clone())
        style_pass.install(patched)
        patched.set_model_sampler_post_cfg_function(StyleGuidancePostCFG(style_pass, scale),
                                                    disable_cfg1_optimization=True)
        return io.NodeOutput(patched)
