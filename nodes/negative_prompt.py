"""Shared parts of the negative-prompt-in-attention nodes (NAG, VSF): the NEGATIVE input and its checks."""
from comfy_api.latest import io

from ..attention_patches.layers import LayerMap, layer_map
from .common import NodeInputError
from .conditioning import check_conditioning


def negative_input(tooltip: str):
    return io.Conditioning.Input("negative", tooltip=tooltip)


def negative_context(model, node: str, negative, supported: tuple[str, ...], refusal: str) -> tuple[LayerMap, list]:
    """The model's layer map and the checked negative CONDITIONING, or a NodeInputError naming the node.

    supported: layer-map families (unet, wan, mmdit, flux, qwen, lumina2); refusal: why the others are refused."""
    try:
        lmap = layer_map(model)
    except ValueError as error:
        raise NodeInputError(f"{node}: {error}") from None
    if lmap.family not in supported:
        raise NodeInputError(f"{node}: {lmap.model_name} models are not supported; {refusal}")
    if not negative or not isinstance(negative, list) or negative[0][0] is None:
        raise NodeInputError(f"{node}: the 'negative' input is missing or empty; wire a CLIP Text Encode of the "
                             "negative prompt")
    return lmap, check_conditioning(node, "negative", negative, model)
