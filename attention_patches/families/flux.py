"""Flux, Flux2 and Chroma: double-stream blocks (separate text and image tokens, joint attention) then single-stream
blocks over one joint sequence; Flux2 may put the image tokens first."""
from __future__ import annotations

from ..layers import Layer
from .base import Family, stack


class Flux(Family):
    name = "flux"
    label = "Flux, Flux2, Chroma"
    config_classes = ("Flux", "FluxInpaint", "FluxSchnell", "Flux2", "Chroma")
    joint = True
    dit_keys = {"double": "double_block", "single": "single_block"}
    time_embeddings = ("time_in",                     # Flux, Flux2
                       "distilled_guidance_layer")    # Chroma: its time/guidance modulation approximator
    refused = frozenset({"S-CFG", "VSF", "SAG"})

    def matches(self, diffusion_model) -> bool:
        return hasattr(diffusion_model, "double_blocks") and hasattr(diffusion_model, "single_blocks")

    def layers(self, diffusion_model) -> list[Layer]:
        return stack("double", len(diffusion_model.double_blocks)) + stack("single", len(diffusion_model.single_blocks))

    def text_first(self, diffusion_model) -> bool:
        blocks = diffusion_model.double_blocks
        return not (len(blocks) and getattr(blocks[0], "flipped_img_txt", False))

    def block_carries_text(self, layer: Layer) -> bool:
        return layer.group == "single"


FLUX = Flux()
