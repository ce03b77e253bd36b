"""Cosmos Predict2 (MiniTrainDIT) and Anima, its DiT behind an LLM text adapter: each block runs self-attention over
the video tokens, then cross-attention to the text context, then an MLP. No "dit" block patches, so the attention
calls of a forward are counted: call 2i is block i's self-attention, call 2i + 1 its cross-attention."""
from __future__ import annotations

import torch

from ..layers import Layer, LayerMap
from .base import AttentionReach, BlockReach, BlockStack, TextEntry


class CosmosPredict2(BlockStack):
    name = "cosmos_predict2"
    label = "Cosmos Predict2"
    config_classes = ("CosmosT2IPredict2", "CosmosI2VPredict2")
    model_class = "MiniTrainDIT"
    dit_keys: dict[str, str] = {}
    attention_reach = AttentionReach.CALL_COUNT
    block_reach = BlockReach.FORWARD_HOOKS
    text_entry = TextEntry.BLOCK_CROSS_ATTENTION
    # t_embedder's modules are called one by one; the normed embedding is what every block and the final layer get
    time_embeddings = ("t_embedding_norm",)
    refused = frozenset({"S-CFG", "SAG"})
    refusal_reasons = {method: "S-CFG and SAG read a UNet's cross/self-attention maps; Cosmos Predict2 is a DiT"
                       for method in ("S-CFG", "SAG")}

    def matches(self, diffusion_model) -> bool:
        return type(diffusion_model).__name__ == self.model_class and super().matches(diffusion_model)

    def counted_layer(self, index: int, lmap: LayerMap) -> Layer | None:
        """Block index // 2's self-attention; None for the cross-attention calls."""
        return Layer("block", index // 2) if index % 2 == 0 else None

    def counted_cross_layer(self, index: int, lmap: LayerMap) -> Layer | None:
        return Layer("block", index // 2) if index % 2 == 1 else None

    def token_lengths(self, diffusion_model, args: tuple, kwargs: dict) -> tuple[int, None]:
        """No text in the self-attention; every token is a video token."""
        return 0, None

    def block_modules(self, diffusion_model) -> dict[Layer, torch.nn.Module]:
        return dict(zip(self.layers(diffusion_model), diffusion_model.blocks))

    def cross_call_index(self, block: torch.nn.Module) -> int:
        return 1

    def embed_text(self, diffusion_model, tokens: torch.Tensor) -> torch.Tensor:
        """The blocks attend to the model's context as it is given (Anima's adapter has run before)."""
        return tokens


class Anima(CosmosPredict2):
    name = "anima"
    label = "Anima"
    config_classes = ("Anima",)
    model_class = "Anima"
    refusal_reasons = {method: "S-CFG and SAG read a UNet's cross/self-attention maps; Anima is a DiT"
                       for method in ("S-CFG", "SAG")}


COSMOS_PREDICT2 = CosmosPredict2()
ANIMA = Anima()
