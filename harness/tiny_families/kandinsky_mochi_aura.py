"""Tiny Kandinsky 5 (image and video: text encoder blocks, then visual blocks with self- and cross-attention), Mochi
(asymmetric joint blocks, video first, text cut to its attention mask) and AuraFlow (double then single blocks, 8
register tokens before the prompt) recipes."""
from __future__ import annotations

import torch

from . import TinyFamily

CTX = 64
POOLED = 32
MOCHI_PAD = 10      # Mochi's T5 pads every prompt (to 256 tokens) and gives the real ones in its attention mask

_KANDINSKY5 = dict(image_model="kandinsky5", in_visual_dim=16, out_visual_dim=16, in_text_dim=CTX,
                   in_text_dim2=POOLED, time_dim=64, model_dim=64, ff_dim=128, patch_size=(1, 2, 2),
                   num_text_blocks=1, num_visual_blocks=2, axes_dims=(8, 12, 12))
# the video model takes [noise, image, mask] channels (33 * 2 * 2 per patch); the image model the noise alone
_KANDINSKY5_VIDEO = dict(_KANDINSKY5, visual_embed_dim=132)
_KANDINSKY5_IMAGE = dict(_KANDINSKY5, visual_embed_dim=64, rope_scale_factor=(1.0, 1.0, 1.0))
# its blocks assert hidden_size_x * mlp_ratio_x == 1536 * 8
_MOCHI = dict(image_model="mochi_preview", patch_size=2, in_channels=12, hidden_size_x=64, hidden_size_y=32, depth=2,
              num_heads=2, mlp_ratio_x=192.0, mlp_ratio_y=4.0, learn_sigma=False, qk_norm=True, qkv_bias=False,
              out_bias=True, attn_drop=0.0, patch_embed_bias=True, posenc_preserve_area=True, timestep_mlp_bias=True,
              attend_to_padding=False, timestep_scale=1000.0, use_t5=True, t5_feat_dim=CTX)
_AURAFLOW = dict(in_channels=4, out_channels=4, patch_size=2, dim=64, n_layers=4, n_double_layers=2, n_heads=2,
                 global_conddim=64, cond_seq_dim=CTX, max_seq=64)


def mochi_context(g: torch.Generator, tokens: int) -> torch.Tensor:
    """The prompt padded to MOCHI_PAD tokens."""
    return torch.randn(1, max(tokens, MOCHI_PAD), CTX, generator=g)


def mochi_mask(g: torch.Generator, tokens: int) -> dict:
    """T5's attention mask: the model takes num_tokens (its text length in attention) from it."""
    mask = torch.zeros(1, max(tokens, MOCHI_PAD), dtype=torch.long)
    mask[:, :tokens] = 1
    return {"attention_mask": mask}


KANDINSKY_NOTE = ("text: Qwen2.5-VL tokens refined by the model's text blocks, then cross-attention in every visual "
                  "block; NAG and VSF refine the negative the same way, with the row's own time-step embedding")
# ComfyUI's "dit" block replace cannot run a Kandinsky 5 block (we reach them by forward hooks), but core
# SkipLayerGuidanceDiT's skip never runs it, so core's SLG works and ours is checked against it
CORE_SLG = {"core_slg": True}

FAMILIES = [
    TinyFamily(key="kandinsky5_image", label="Kandinsky 5 image", config="Kandinsky5Image",
               unet_config=_KANDINSKY5_IMAGE, latent=(16, 8, 8), pooled=POOLED, order=50, notes=KANDINSKY_NOTE,
               extra=CORE_SLG),
    TinyFamily(key="kandinsky5_video", label="Kandinsky 5 video", config="Kandinsky5",
               unet_config=_KANDINSKY5_VIDEO, latent=(16, 2, 8, 8), pooled=POOLED, order=51, notes=KANDINSKY_NOTE,
               extra=CORE_SLG),
    TinyFamily(key="mochi", label="Mochi", config="GenmoMochi", unet_config=_MOCHI, latent=(12, 2, 8, 8), order=52,
               context_fn=mochi_context, extra_cond=mochi_mask, extra_cond_tokens=True,
               notes="joint attention over [video, text cut to the prompt's real tokens]; NAG's negative row is "
                     "cut and pooled with the positive's attention mask (one num_tokens per call)"),
    TinyFamily(key="auraflow", label="AuraFlow", config="AuraFlow", unet_config=_AURAFLOW, latent=(4, 8, 8),
               order=53, notes="text stream: 8 register tokens, then the prompt"),
]
