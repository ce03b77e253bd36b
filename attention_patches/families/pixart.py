"""PixArt Sigma (and Alpha, the same PixArtMS): one stack of blocks, each self-attention over the image tokens, a
cross-attention to the T5 text, then an MLP. Its forward runs no DIFFUSION_MODEL wrappers and no "dit" patches, and
its attention calls get no transformer_options, so no attention override can reach them: the attention methods
refuse, and whole blocks are reached by forward hooks an APPLY_MODEL wrapper installs for one model call."""
from __future__ import annotations

import torch

from ..layers import Layer
from .base import BlockReach, BlockStack, TextEntry, diffusion_model_of

# the methods that act inside attention calls (an attention override or the negative-context hook)
ATTENTION_METHODS = frozenset({"PAG", "SEG", "ASAG", "PLADIS", "SPG", "NAG", "VSF", "S-CFG", "SAG"})


def unreachable(label: str) -> dict[str, str]:
    """Why each attention method refuses a family whose attention calls get no transformer_options."""
    why = (f"{label}'s attention calls get no transformer_options, so no attention hook can reach them without "
           f"replacing its modules' forward (whole-block methods run on it: SLG, TPG, S2-Guidance)")
    return {method: why for method in ATTENTION_METHODS}


class PixArt(BlockStack):
    name = "pixart"
    label = "PixArt"
    config_classes = ("PixArtSigma", "PixArtAlpha")
    dit_keys: dict[str, str] = {}
    block_reach = BlockReach.FORWARD_HOOKS
    forward_wrapper = "apply_model"
    text_entry = TextEntry.BLOCK_CROSS_ATTENTION
    time_embeddings = ("t_embedder",)
    refused = ATTENTION_METHODS
    refusal_reasons = unreachable("PixArt")

    def matches(self, diffusion_model) -> bool:
        return type(diffusion_model).__name__ == "PixArtMS" and super().matches(diffusion_model)

    def block_modules(self, model) -> dict[Layer, torch.nn.Module]:
        blocks = diffusion_model_of(model).blocks
        return dict(zip(self.layers(diffusion_model_of(model)), blocks))


PIXART = PixArt()
