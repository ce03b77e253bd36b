"""What the pack knows about one architecture family, in one object: the ComfyUI model classes it covers, its layer
groups and names, per-method defaults, how its attention and blocks are reached, its token layout, and where its
text and time step enter. One module per family subclasses Family; nothing outside the adapters asks which family a
model is."""
from __future__ import annotations

from enum import Enum

import torch

from ..layers import Layer, LayerMap


def diffusion_model_of(model: torch.nn.Module) -> torch.nn.Module:
    """The diffusion model of an APPLY_MODEL wrapper's BaseModel (or the diffusion model itself)."""
    return getattr(model, "diffusion_model", model)


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
    block_image = "img"                         # key of the image tokens in its "dit" block replace args and output
    block_text = "txt"                          # key of the text (stream or cross-attention context) in those args
    block_stream: int | None = None             # the image's index where block_image is a tuple of streams (LTX-2)
    text_cross_calls: tuple[int, ...] | None = None  # which calls of a marked block are its text cross-attention
                                                     # (PLADIS); None: every call after its self-attention (Wan)
    token_grid = False                          # its layers tell the (h, w) grid of the image tokens
    time_embeddings: tuple[str, ...] = ()       # attribute paths of the time-step embedding module, first match wins
    refused: frozenset[str] = frozenset()       # methods (their METHOD_INFO name) whose mechanism has no place here
    refusal_reasons: dict[str, str] = {}        # refused method -> why, for its node's error (a default otherwise)
    # the ComfyUI WrappersMP kind of the per-forward wrappers (CALL_COUNT, FORWARD_HOOKS): "apply_model" where the
    # diffusion model's forward runs no DIFFUSION_MODEL wrappers (their executor's class_obj is then the BaseModel)
    forward_wrapper = "diffusion_model"
    negative_conds: tuple[str, ...] = ()        # model conds NAG's negative row takes from the negative, beside text
    reference_latents = False                   # edit models: forwards may append reference-latent tokens after the
                                                # generated image tokens (see generated_tokens)

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

    def refusal(self, method: str) -> str:
        """Why a refused method has no place on this family, for its node's error."""
        return self.refusal_reasons.get(method, f"the {self.label} attention has no layer {method} can act on")

    # -- blocks ----------------------------------------------------------------------------------------------------
    def block_modules(self, diffusion_model: torch.nn.Module) -> dict[Layer, torch.nn.Module]:
        """The block module behind each layer name (FORWARD_HOOKS families)."""
        raise NotImplementedError

    def block_outputs(self, layer: Layer) -> tuple[int, ...]:
        """FORWARD_HOOKS: the positional inputs a block's output stands for, in its order (a tuple output when more
        than one); a skipped block returns them."""
        return (0,)

    def block_carries_text(self, layer: Layer) -> bool:
        """Whether the block's hidden states are a joint text + image sequence."""
        return False

    def generated_tokens(self, diffusion_model: torch.nn.Module, x: torch.Tensor) -> int:
        """reference_latents families: the image tokens a forward makes of its input x; the joint sequence's tokens
        beyond them (and the text) are reference-latent tokens."""
        raise NotImplementedError

    # -- attention calls (CALL_COUNT families) ---------------------------------------------------------------------
    def counted_layer(self, index: int, lmap: LayerMap) -> Layer:
        """The layer of the forward's index-th attention call."""
        raise NotImplementedError

    def counted_cross_layer(self, index: int, lmap: LayerMap) -> Layer | None:
        """BLOCK_CROSS_ATTENTION CALL_COUNT families: the layer whose text cross-attention is the forward's index-th
        attention call, None for the other calls."""
        return None

    def token_lengths(self, diffusion_model, args: tuple, kwargs: dict) -> tuple[int, int | None]:
        """(text tokens, image tokens before any padding) of a forward's joint sequence."""
        raise NotImplementedError

    def text_refiner_calls(self, diffusion_model: torch.nn.Module) -> int:
        """Attention calls over the text alone that open a forward (CALL_COUNT families)."""
        return 0

    def prompt_start(self, text: slice, context_len: int) -> int:
        """Where the prompt's own context_len tokens begin among a joint call's text tokens (other text-stream
        tokens, such as glyph or vision tokens, may come before them)."""
        return text.start

    # -- text and time ---------------------------------------------------------------------------------------------
    def cross_call_index(self, block: torch.nn.Module) -> int:
        """BLOCK_CROSS_ATTENTION: which attention call of the block is its text cross-attention."""
        raise NotImplementedError

    def embed_text(self, diffusion_model: torch.nn.Module, tokens: torch.Tensor) -> torch.Tensor:
        """BLOCK_CROSS_ATTENTION: a raw text context as the blocks' cross-attention receives it."""
        raise NotImplementedError

    def embed_block_text(self, diffusion_model: torch.nn.Module, tokens: torch.Tensor,
                         block_args: dict) -> torch.Tensor:
        """BLOCK_CROSS_ATTENTION: embed_text, for a model whose text embedding also needs the block's "dit" args, or
        {"args", "kwargs"} of the context_module's call (its time-step embedding)."""
        return self.embed_text(diffusion_model, tokens)

    def context_module(self, diffusion_model: torch.nn.Module) -> torch.nn.Module | None:
        """BLOCK_CROSS_ATTENTION CALL_COUNT: the module whose output is the text context the blocks cross-attend to,
        where that is not the forward's context argument (Kandinsky 5 refines it in text blocks); None: the
        argument."""
        return None

    def text_widths(self, diffusion_model: torch.nn.Module) -> tuple[int, ...]:
        """The text conditioning widths the model takes, the usual one first; () where its modules tell it."""
        return ()

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
