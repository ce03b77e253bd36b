"""HiDream-I1: double-stream blocks, then single-stream blocks over [image, text] tokens, MoE feed-forwards; the text is
T5 plus the last Llama layer plus the block's own Llama layer. No block patches: its attention calls are counted per
forward and its blocks reached by forward hooks."""
from __future__ import annotations

import torch

from ..layers import Layer, LayerMap
from .base import AttentionReach, BlockReach, Family, stack


class HiDream(Family):
    name = "hidream"
    label = "HiDream"
    config_classes = ("HiDream",)
    joint = True
    attention_reach = AttentionReach.CALL_COUNT
    block_reach = BlockReach.FORWARD_HOOKS
    time_embeddings = ("t_embedder",)
    negative_conds = ("encoder_hidden_states_llama3",)
    refused = frozenset({"S-CFG", "VSF", "SAG"})
    refusal_reasons = {"VSF": "HiDream's text is T5 followed by Llama layers, so the negative cannot follow the "
                              "prompt as VSF's [prompt, negative] text layout needs"}

    def matches(self, diffusion_model) -> bool:
        return (type(diffusion_model).__name__ == "HiDreamImageTransformer2DModel"
                and all(hasattr(diffusion_model, name) for name in ("double_stream_blocks", "single_stream_blocks")))

    def layers(self, diffusion_model) -> list[Layer]:
        return (stack("double", len(diffusion_model.double_stream_blocks))
                + stack("single", len(diffusion_model.single_stream_blocks)))

    def text_first(self, diffusion_model) -> bool:
        return False

    def counted_layer(self, index: int, lmap: LayerMap) -> Layer:
        doubles = sum(1 for layer in lmap.layers if layer.group == "double")
        return Layer("double", index) if index < doubles else Layer("single", index - doubles)

    def token_lengths(self, diffusion_model, args: tuple, kwargs: dict) -> tuple[int, int]:
        """T5 tokens plus twice the Llama tokens (the last layer's and the block's own), and the image patches (an
        edit's image_cond is joined to the latent's width)."""
        names = ("x", "t", "y", "context", "encoder_hidden_states_llama3", "image_cond")
        x, _, _, context, llama, cond = (args[i] if len(args) > i else kwargs.get(name) for i, name in enumerate(names))
        width = x.shape[-1] + (cond.shape[-1] if cond is not None else 0)
        patch = diffusion_model.patch_size
        return context.shape[1] + 2 * llama.shape[2], -(-x.shape[-2] // patch) * -(-width // patch)

    def text_widths(self, diffusion_model) -> tuple[int, ...]:
        """T5's width (the text context); the Llama layers come as conditioning_llama3."""
        return (diffusion_model.caption_projection[-1].linear.in_features,)

    def block_modules(self, diffusion_model) -> dict[Layer, torch.nn.Module]:
        """The inner blocks: their forward takes (image tokens, mask, text tokens, ...) positionally."""
        blocks = list(diffusion_model.double_stream_blocks) + list(diffusion_model.single_stream_blocks)
        return {layer: block.block for layer, block in zip(self.layers(diffusion_model), blocks)}

    def block_outputs(self, layer: Layer) -> tuple[int, ...]:
        """A double block returns (image tokens, text tokens), a single block its joint tokens."""
        return (0, 2) if layer.group == "double" else (0,)

    def block_carries_text(self, layer: Layer) -> bool:
        return layer.group == "single"


HIDREAM = HiDream()
