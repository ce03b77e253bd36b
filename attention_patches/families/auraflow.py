"""AuraFlow: double (joint) blocks with separate text and image streams, then single blocks over one
[text, image] sequence; its text stream is 8 learned register tokens followed by the prompt."""
from __future__ import annotations

from ..layers import Layer
from .base import Family, stack


class AuraFlow(Family):
    name = "auraflow"
    label = "AuraFlow"
    config_classes = ("AuraFlow",)
    joint = True
    dit_keys = {"double": "double_block", "single": "single_block"}
    time_embeddings = ("t_embedder",)
    refused = frozenset({"S-CFG", "SAG"})

    def matches(self, diffusion_model) -> bool:
        return all(hasattr(diffusion_model, name) for name in ("double_layers", "single_layers", "register_tokens"))

    def layers(self, diffusion_model) -> list[Layer]:
        return stack("double", len(diffusion_model.double_layers)) + stack("single", len(diffusion_model.single_layers))

    def block_carries_text(self, layer: Layer) -> bool:
        return layer.group == "single"

    def prompt_start(self, text: slice, context_len: int) -> int:
        """The register tokens come first, the prompt last."""
        return text.stop - context_len


AURAFLOW = AuraFlow()
