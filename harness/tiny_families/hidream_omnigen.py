"""Tiny HiDream (double- then single-stream MoE blocks; T5, Llama layers and pooled CLIP) and OmniGen2 (text, image
refiners, then joint layers like Lumina2) recipes."""
from __future__ import annotations

import torch

from . import TinyFamily

CTX = 64            # T5 / Qwen2.5 text width
LLAMA = 48          # Llama hidden-state width (HiDream's second caption channel)
LLAMA_LAYERS = 3    # Llama layers the text encoder returns
LLAMA_TOKENS = 5
POOLED = 32

_HIDREAM = dict(image_model="hidream", patch_size=2, in_channels=16, out_channels=16, num_layers=2,
                num_single_layers=2, attention_head_dim=32, num_attention_heads=2, caption_channels=[CTX, LLAMA],
                text_emb_dim=POOLED, num_routed_experts=4, num_activated_experts=2, axes_dims_rope=[16, 8, 8],
                max_resolution=[16, 16], llama_layers=[0, 1, 2, 2])
_OMNIGEN2 = dict(image_model="omnigen2", patch_size=2, in_channels=16, out_channels=None, hidden_size=64,
                 num_layers=2, num_refiner_layers=1, num_attention_heads=2, num_kv_heads=1, multiple_of=16,
                 ffn_dim_multiplier=None, norm_eps=1e-5, axes_dim_rope=[8, 12, 12], axes_lens=[300, 64, 64],
                 text_feat_dim=CTX, timestep_scale=1000.0)


def hidream_llama(g: torch.Generator) -> dict:
    """The Llama hidden states of every returned layer, (1, layers, tokens, width), as HiDream's text encoder gives
    them in conditioning_llama3."""
    return {"conditioning_llama3": torch.randn(1, LLAMA_LAYERS, LLAMA_TOKENS, LLAMA, generator=g)}


def omnigen2_mask(g: torch.Generator, tokens: int) -> dict:
    """Qwen2.5's attention mask (all real tokens): the model takes num_tokens from it."""
    return {"attention_mask": torch.ones(1, tokens, dtype=torch.long)}


FAMILIES = [
    TinyFamily(key="hidream", label="HiDream", config="HiDream", unet_config=_HIDREAM, latent=(16, 8, 8),
               pooled=POOLED, order=30, extra_cond=hidream_llama,
               notes="text: T5 plus two Llama layers per block (NAG's negative row takes the negative's Llama "
                     "layers too)", extra={"core_slg": False}),
    TinyFamily(key="omnigen2", label="Omnigen2", config="Omnigen2", unet_config=_OMNIGEN2, latent=(16, 8, 8),
               order=31, extra_cond=omnigen2_mask, extra_cond_tokens=True, extra={"core_slg": False},
               notes="text and image refiners, then joint layers like Lumina2; with reference images the "
                     "attention perturbations refuse (the refiners add attention calls)"),
]
