"""Mochi (Genmo): asymmetric joint blocks, video tokens and text tokens with their own widths in one attention call,
video first, the text cut to the prompt's real tokens (num_tokens)."""
from __future__ import annotations

from .base import BlockStack


class Mochi(BlockStack):
    name = "mochi"
    label = "Mochi"
    config_classes = ("GenmoMochi",)
    joint = True
    # its forward runs no DIFFUSION_MODEL wrappers
    forward_wrapper = "apply_model"
    time_embeddings = ("t_embedder",)
    refused = frozenset({"S-CFG", "VSF", "SAG"})
    refusal_reasons = {"VSF": "Mochi cuts its text to the prompt's attention-mask tokens and pools it with that "
                              "mask, so the negative copies VSF appends to the prompt never reach its attention"}

    def matches(self, diffusion_model) -> bool:
        return type(diffusion_model).__name__ == "AsymmDiTJoint" and super().matches(diffusion_model)

    def text_first(self, diffusion_model) -> bool:
        return False


MOCHI = Mochi()
