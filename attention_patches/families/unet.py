"""SD1.5, SDXL and every other ComfyUI UNet: attention in the transformer blocks of input, middle and output blocks,
text through each transformer block's attn2, the time step through time_embed."""
from __future__ import annotations

import torch

from ..layers import Layer, LayerMap
from .base import AttentionReach, BlockReach, Family, TextEntry

# TPG's official SDXL layers (diffusers d6-d23), then their SD1.5 counterpart
TPG_OFFICIAL = ("input 7:2-9, input 8", "input 7-8")


def _transformer_blocks(block: torch.nn.Module) -> list[torch.nn.Module]:
    return [t for m in block.modules() if type(m).__name__ == "SpatialTransformer" for t in m.transformer_blocks]


def _stages(diffusion_model) -> tuple:
    return (("input", diffusion_model.input_blocks), ("middle", [diffusion_model.middle_block]),
            ("output", diffusion_model.output_blocks))


class UNet(Family):
    name = "unet"
    label = "SD1.5, SDXL (UNets)"
    config_classes = ("SD15", "SD20", "SD21UnclipL", "SD21UnclipH", "SDXL", "SDXLRefiner", "SSD1B", "Segmind_Vega",
                      "KOALA_700M", "KOALA_1B", "SD15_instructpix2pix", "SDXL_instructpix2pix")
    attention_reach = AttentionReach.REPLACE_PATCHES
    block_reach = BlockReach.FORWARD_HOOKS
    text_entry = TextEntry.CROSS_ATTENTION
    token_grid = True
    time_embeddings = ("time_embed",)

    def matches(self, diffusion_model) -> bool:
        return hasattr(diffusion_model, "input_blocks") and hasattr(diffusion_model, "middle_block")

    def layers(self, diffusion_model) -> list[Layer]:
        return [Layer(group, i, t) for group, blocks in _stages(diffusion_model) for i, block in enumerate(blocks)
                for t in range(len(_transformer_blocks(block)))]

    def default(self, layers: list[Layer]) -> str:
        """The paper's mid block where there is one."""
        return "middle" if any(layer.group == "middle" for layer in layers) else layers[-1].name

    def patch_key(self, layer: Layer) -> tuple:
        """(block, index, transformer_index) of ComfyUI's attn1/attn2 replace patches."""
        return layer.group, layer.index, layer.sub

    def block_modules(self, diffusion_model) -> dict[Layer, torch.nn.Module]:
        """Each transformer block, named like the attention layers ('middle 0:3')."""
        return {Layer(group, i, sub): module for group, blocks in _stages(diffusion_model)
                for i, block in enumerate(blocks) for sub, module in enumerate(_transformer_blocks(block))}

    def slg_layers(self, lmap: LayerMap) -> str:
        """The mid block's transformer blocks."""
        return lmap.default

    def tpg_layers(self, lmap: LayerMap) -> str:
        """The official SDXL layers, their SD1.5 counterpart, else the last two input blocks with transformers."""
        for spec in TPG_OFFICIAL:
            try:
                lmap.parse(spec)
                return spec
            except ValueError:
                pass
        inputs = sorted({layer.index for layer in lmap.layers if layer.group == "input"})
        return ", ".join(f"input {i}" for i in inputs[-2:]) or lmap.default


UNET = UNet()
