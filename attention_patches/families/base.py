"""What the pack knows about one architecture family, in one object: the ComfyUI model classes it covers, its layer
groups and names, per-method defaults, how its attention and blocks are reached, its token layout, and where its
text and time step enter. One module per family subclasses Family; nothing outside the adapters asks which family a
model is."""
from __future__ import annotations

from enum import Enum

import torch

from ..layers import Layer, LayerMap


class AttentionReach(Enum):
    """How the hook finds a chosen layer's self/joint attention call."""
    REPLACE_PATCHES = "attn1/attn2 replace patches keyed (block, index, transformer_index)"
    BLOCK_MARKERS = "'dit' block replace patches mark the running block; an attention override acts in it"
    CALL_COUNT = "no block patches: a diffusion-model wrapper counts the forward's attention calls"


class BlockReach(Enum):
    """How a whole block is skipped or has its input changed."""
    DIT_REPLACE = "'dit' block replace patches"
    FORWARD_HOOKS = "forward hooks on the block modules, for one model call"


class TextEntry(Enum):
    """Where the prompt enters attention (cross-attention methods, NAG, VSF)."""
    CROSS_ATTENTION = "a fixed text context in each transformer block's attn2"
    BLOCK_CROSS_ATTENTION = "the embedded text context of each block's cross-attention call"
    JOINT = "text tokens are a stream of the joint attention, changed by every block"


class Family:
    """An architecture family. Subclasses set the facts below and override what differs."""
    name = ""                                   # short id, for messages and tests
    label = ""                                  # what users call the models it covers
    config_classes: tuple[str, ...] = ()        # ComfyUI model config classes (comfy.supported_models) it covers
    joint = False                               # self-attention also carries the text tokens
    attention_reach = AttentionReach.BLOCK_MARKERS
    block_reach = BlockReach.DIT_REPLACE
    text_entry = TextEntry.JOINT
    dit_keys: dict[str, str] = {}               # our layer group -> ComfyUI "dit" replace key prefix
    token_grid = False                          # its layers tell the (h, w) grid of the image tokens
    time_embeddings: tuple[str, ...] = ()       # attribute paths of the time-step embedding module, first match wins
    refused: frozenset[str] = frozenset()       # methods (their METHOD_INFO name) whose mechanism has no place here

    def matches(self, diffusion_model: torch.nn.Module) -> bool:
        """Whether a diffusion model of an unlisted config class has this family's structure."""
        raise NotImplementedError

    def layers(self, diffusion_model: torch.nn.Module) -> list[Layer]:
        raise NotImplementedError

    def default(self, layers: list[Layer]) -> str:
        """The layers a method uses when the user leaves them empty: the second block of the first stack (the first
        when there is one)."""
        group = layers[0].group
        count = sum(1 for layer in layers if layer.group == group)
        return f"{group} {min(1, count - 1)}"

    def text_first(self, diffusion_model: torch.nn.Module) -> bool:
        """Token order of joint attention."""
        return True

    def refiner_calls(self, diffusion_model: torch.nn.Module) -> int:
        """Attention calls of a forward before its main layers (CALL_COUNT families)."""
        return 0

    def layer_map(self, model_name: str, diffusion_model: torch.nn.Module) -> LayerMap:
        layers = self.layers(diffusion_model)
        return LayerMap(self, model_name, layers, self.default(layers), self.text_first(diffusion_model),
                        self.refiner_calls(diffusion_model))

    def patch_key(self, layer: Layer) -> tuple:
        """The key of a layer's ComfyUI replace patch."""
        return self.dit_keys[layer.group], layer.index

    def supports(self, method: str) -> bool:
        return method not in self.refused

    # -- blocks ----------------------------------------------------------------------------------------------------
    def block_modules(self, diffusion_model: torch.nn.Module) -> dict[Layer, torch.nn.Module]:
        """The block module behind each layer name (FORWARD_HOOKS families)."""
        raise NotImplementedError

    def block_carries_text(self, layer: Layer) -> bool:
        """Whether the block's hidden states are a joint text + image sequence."""
        return False

    # -- attention calls (CALL_COUNT families) ---------------------------------------------------------------------
    def counted_layer(self, index: int, lmap: LayerMap) -> Layer:
        """The layer of the forward's index-th attention call."""
        raise NotImplementedError

    def token_lengths(self, diffusion_model, args: tuple, kwargs: dict) -> tuple[int, int | None]:
        """(text tokens, image tokens before any padding) of a forward's joint sequence."""
        raise NotImplementedError

    def text_refiner_calls(self, diffusion_model: torch.nn.Module) -> int:
        """Attention calls over the text alone that open a forward (CALL_COUNT families)."""
        return 0

    # -- text and time ---------------------------------------------------------------------------------------------
    def cross_call_index(self, block: torch.nn.Module) -> int:
        """BLOCK_CROSS_ATTENTION: which attention call of the block is its text cross-attention."""
        raise NotImplementedError

    def embed_text(self, diffusion_model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
        """BLOCK_CROSS_ATTENTION: a raw text context as the blocks' cross-attention receives it."""
        raise NotImplementedError

    def time_embedding(self, diffusion_model: torch.nn.Module) -> torch.nn.Module | None:
        """The module whose output is the time-step embedding (TSG), or None."""
        for path in self.time_embeddings:
            module = diffusion_model
            for name in path.split("."):
                module = getattr(module, name, None)
                if module is None:
                    break
            if isinstance(module, torch.nn.Module):
                return module
        return None

    # -- per-method defaults ---------------------------------------------------------------------------------------
    def slg_layers(self, lmap: LayerMap) -> str:
        """Core SLG's layers 7, 8, 9 of every stack the model has."""
        wanted = [f"{group} {i}" for group in lmap.groups() for i in (7, 8, 9) if Layer(group, i) in lmap.layers]
        return ", ".join(wanted) or lmap.default

    def tpg_layers(self, lmap: LayerMap) -> str:
        return lmap.default


class BlockStack(Family):
    """A DiT with one stack of blocks, 'block 0' to 'block N-1', each a "dit" double_block replace patch."""
    blocks_attribute = "blocks"                 # the diffusion model's attribute holding the blocks
    dit_keys = {"block": "double_block"}

    def matches(self, diffusion_model) -> bool:
        return hasattr(diffusion_model, self.blocks_attribute)

    def layers(self, diffusion_model) -> list[Layer]:
        return stack("block", len(getattr(diffusion_model, self.blocks_attribute)))


def stack(group: str, count: int) -> list[Layer]:
    """The layers of one stack of `count` blocks."""
    return [Layer(group, i) for i in range(count)]
