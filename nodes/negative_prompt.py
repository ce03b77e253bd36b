"""Shared parts of the negative-prompt-in-attention nodes (NAG, VSF): the NEGATIVE input and its checks."""
from comfy_api.latest import io

from ..attention_patches.families import FAMILIES, layer_map
from ..attention_patches.layers import LayerMap
from .common import NodeInputError
from .conditioning import check_conditioning


def negative_input(tooltip: str):
    return io.Conditioning.Input("negative", tooltip=tooltip)


def negative_context(model, node: str, negative, method: str, refusal: str) -> tuple[LayerMap, list]:
    """The model's layer map and the checked negative CONDITIONING, or a NodeInputError naming the node.

    method: the key family adapters refuse it by ("NAG", "VSF"); refusal: why the families that do are refused."""
    try:
        lmap = layer_map(model)
    except ValueError as error:
        raise NodeInputError(f"{node}: {error}") from None
    if not lmap.family.supports(method):
        runs_on = "; ".join(family.label for family in FAMILIES if family.supports(method))
        raise NodeInputError(f"{node}: {lmap.model_name} models are not supported; {method} runs on {runs_on}. "
                             f"{lmap.family.refusal_reasons.get(method, refusal)}")
    if not negative or not isinstance(negative, list) or negative[0][0] is None:
        raise NodeInputError(f"{node}: the 'negative' input is missing or empty; wire a CLIP Text Encode of the "
                             "negative prompt")
    return lmap, check_conditioning(node, "negative", negative, model)
