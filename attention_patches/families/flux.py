"""Flux, Flux2 and Chroma: double-stream blocks (separate text and image tokens, joint attention) then single-stream
blocks over one joint sequence; Flux2 may put the image tokens first."""
from __future__ import annotations

from ..layers import Layer
from .base import Family, stack


class DoubleSingleStream(Family):
    """Flux's block layout: double_blocks (text and image streams), then single_blocks over the joint sequence; text
    first unless the double blocks are flipped_img_txt."""
    joint = True
    dit_keys = {"double": "double_block", "single": "single_block"}

    def layers(self, diffusion_model) -> list[Layer]:
        return stack("double", len(diffusion_model.double_blocks)) + stack("single", len(diffusion_model.single_blocks))

    def text_first(self, diffusion_model) -> bool:
        blocks = diffusion_model.double_blocks
        return not (len(blocks) and getattr(blocks[0], "flipped_img_txt", False))

    def block_carries_text(self, layer: Layer) -> bool:
        return layer.group == "single"


class Flux(DoubleSingleStream):
    name = "flux"
    label = "Flux, Flux2, Chroma"
    config_classes = ("Flux", "FluxInpaint", "FluxSchnell", "Flux2", "Chroma", "ChromaRadiance")
    time_embeddings = ("time_in",                     # Flux, Flux2
                       "distilled_guidance_layer")    # Chroma: its time/guidance modulation approximator
    refused = frozenset({"S-CFG", "VSF", "SAG"})
    reference_latents = True                          # Kontext, Flux2 edits: ref_latents follow the image tokens

    def matches(self, diffusion_model) -> bool:
        return hasattr(diffusion_model, "double_blocks") and hasattr(diffusion_model, "single_blocks")

    def generated_tokens(self, diffusion_model, x) -> int:
        patch = diffusion_model.patch_size
        return -(-x.shape[-2] // patch) * -(-x.shape[-1] // patch)


FLUX = Flux()
