"""Qwen-Image: dual-stream transformer blocks with joint attention, text first."""
from __future__ import annotations

from .base import BlockStack


class QwenImage(BlockStack):
    name = "qwen"
    label = "Qwen-Image"
    config_classes = ("QwenImage",)
    blocks_attribute = "transformer_blocks"
    joint = True
    time_embeddings = ("time_text_embed.timestep_embedder",)
    refused = frozenset({"S-CFG", "VSF", "SAG"})
    reference_latents = True                    # Qwen-Image-Edit: ref_latents follow the image tokens

    def matches(self, diffusion_model) -> bool:
        return type(diffusion_model).__name__.startswith("QwenImage") and super().matches(diffusion_model)

    def generated_tokens(self, diffusion_model, x) -> int:
        """x (B, C, T, H, W): T frames of 2 x 2 patches."""
        patch = diffusion_model.patch_size
        return x.shape[-3] * -(-x.shape[-2] // patch) * -(-x.shape[-1] // patch)


QWEN_IMAGE = QwenImage()
