"""Lumina2 (NextDiT): a text refiner and an image refiner, then joint layers over [text, image, padding] tokens;
no block patches, so its attention calls are counted per forward."""
from __future__ import annotations

import torch

from ..layers import Layer, LayerMap
from .base import AttentionReach, BlockReach, BlockStack


class Lumina2(BlockStack):
    name = "lumina2"
    label = "Lumina2"
    config_classes = ("Lumina2", "ZImage")
    blocks_attribute = "layers"
    dit_keys: dict[str, str] = {}
    joint = True
    attention_reach = AttentionReach.CALL_COUNT
    block_reach = BlockReach.FORWARD_HOOKS
    time_embeddings = ("t_embedder",)
    refused = frozenset({"S-CFG", "VSF", "SAG"})

    def matches(self, diffusion_model) -> bool:
        # a NextDiT (or subclass): OmniGen2's model has the same three stacks
        return (any(cls.__name__ == "NextDiT" for cls in type(diffusion_model).__mro__)
                and all(hasattr(diffusion_model, name) for name in ("noise_refiner", "context_refiner", "layers")))

    def refiner_calls(self, diffusion_model) -> int:
        return len(diffusion_model.noise_refiner) + len(diffusion_model.context_refiner)

    def text_refiner_calls(self, diffusion_model) -> int:
        return len(diffusion_model.context_refiner)

    def counted_layer(self, index: int, lmap: LayerMap) -> Layer:
        return Layer("block", index - lmap.refiner_calls)

    def token_lengths(self, diffusion_model, args: tuple, kwargs: dict) -> tuple[int, int]:
        """The context padded to a multiple of pad_tokens_multiple, and the image patches before their padding."""
        context = args[2] if len(args) > 2 else kwargs["context"]
        multiple = getattr(diffusion_model, "pad_tokens_multiple", None)
        text = context.shape[1] + ((-context.shape[1]) % multiple if multiple else 0)
        patch = diffusion_model.patch_size
        return text, -(-args[0].shape[-2] // patch) * -(-args[0].shape[-1] // patch)

    def block_modules(self, diffusion_model) -> dict[Layer, torch.nn.Module]:
        return dict(zip(self.layers(diffusion_model), diffusion_model.layers))

    def block_carries_text(self, layer: Layer) -> bool:
        return True


LUMINA2 = Lumina2()
