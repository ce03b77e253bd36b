"""Ernie Image: one stream of [image, text] tokens through single-stream layers of joint self-attention (no separate
cross-attention). ComfyUI's model calls its attention without transformer_options and its forward has no wrapper, so
no attention override or counted call reaches its layers: the attention methods are refused."""
from __future__ import annotations

import torch

from ..layers import Layer
from .base import AttentionReach, BlockReach, BlockStack

_NO_OVERRIDE = ("ComfyUI's Ernie Image calls its attention without transformer_options and runs no diffusion-model "
                "wrapper, so no attention override reaches its layers")
_UNET_ONLY = "S-CFG and SAG read a UNet's cross/self-attention maps; Ernie Image is a DiT"
_ATTENTION = ("PAG", "SEG", "ASAG", "PLADIS", "SPG", "NAG", "VSF")
_BLOCKS = ("TPG", "S2-Guidance", "Skip-Layer Guidance")
_BLOCKS_WHY = ("ComfyUI's Ernie Image forward runs no diffusion-model wrapper and its layers get no "
               "transformer_options, so no block hook can tell a perturbed pass's layers")


class ErnieImage(BlockStack):
    name = "ernie_image"
    label = "Ernie Image"
    config_classes = ("ErnieImage",)
    blocks_attribute = "layers"
    dit_keys: dict[str, str] = {}
    joint = True
    attention_reach = AttentionReach.CALL_COUNT
    block_reach = BlockReach.FORWARD_HOOKS
    time_embeddings = ("time_embedding",)
    refused = frozenset(_ATTENTION + _BLOCKS + ("S-CFG", "SAG"))
    refusal_reasons = {**{m: _NO_OVERRIDE for m in _ATTENTION}, **{m: _BLOCKS_WHY for m in _BLOCKS},
                       "S-CFG": _UNET_ONLY, "SAG": _UNET_ONLY}

    def matches(self, diffusion_model) -> bool:
        return type(diffusion_model).__name__ == "ErnieImageModel" and super().matches(diffusion_model)

    def text_first(self, diffusion_model) -> bool:
        return False

    def block_modules(self, diffusion_model) -> dict[Layer, torch.nn.Module]:
        return dict(zip(self.layers(diffusion_model), diffusion_model.layers))

    def block_carries_text(self, layer: Layer) -> bool:
        return True

    def text_widths(self, diffusion_model) -> tuple[int, ...]:
        """The text projection's input; none when the text already has the model's width."""
        projection = diffusion_model.text_proj
        return (projection.in_features if projection is not None else diffusion_model.hidden_size,)


ERNIE_IMAGE = ErnieImage()
