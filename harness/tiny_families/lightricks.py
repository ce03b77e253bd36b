"""LTXV (Lightricks video DiT: per block a self-attention over the video tokens, then a cross-attention to the
projected text) and LTX-2 (LTXAV: the same video stream beside an audio stream, with audio self/text attention and
audio<->video cross-attention in every block)."""
from __future__ import annotations

import torch

from . import TinyFamily

# 2 heads of 64: the time-step embedding is 128 wide (TSG's statistical check of its noise needs that many values)
_LTXV = dict(image_model="ltxv", in_channels=128, cross_attention_dim=128, attention_head_dim=64,
             num_attention_heads=2, caption_channels=64, num_layers=2)
# audio: 2 heads of 16; caption_channels 32 per stream, so the text context is [video 32 | audio 32] wide, which
# preprocess_text_embeds takes as already processed (its connectors, kept tiny, do not run)
_LTXAV = dict(_LTXV, image_model="ltxav", caption_channels=32, audio_in_channels=128, audio_cross_attention_dim=32,
              audio_attention_head_dim=16, audio_num_attention_heads=2, connector_attention_head_dim=16,
              connector_num_attention_heads=2, connector_num_layers=1, num_learnable_registers=8)

AUDIO_LATENT = (8, 6, 16)          # one sample's audio latent: 8 channels, 6 latent frames, 16 frequency bins


def text_mask(g: torch.Generator, tokens: int) -> dict:
    """T5's attention mask (all real tokens): LTXV's forward takes one."""
    return {"attention_mask": torch.ones(1, tokens, dtype=torch.long)}


FAMILIES = [
    TinyFamily(key="ltxv", label="LTXV", config="LTXV", unet_config=_LTXV, latent=(128, 2, 4, 4), order=20,
               extra_cond=text_mask, extra_cond_tokens=True,
               notes="self-attention, then cross-attention to the text, in every block; 5-D video latent"),
    TinyFamily(key="ltx2", label="LTX-2", config="LTXAV", unet_config=_LTXAV, latent=(128, 2, 4, 4), order=21,
               notes="the suite samples the video stream alone; tests/test_ltx2_audio.py samples video + audio "
                     "(a NestedTensor latent) and checks that the audio stream's own attention is left alone"),
]
