"""Lightricks LTXV and LTX-2 (LTXAV).

LTXV: per block a self-attention over the video tokens (call 0), then a cross-attention to the projected text
(call 1), like Wan; "dit" double_block patches mark each block.
LTX-2: each block carries (video, audio) hidden states and makes, in order, the video self-attention (call 0), the
video text cross-attention (1), the audio self-attention (2), the audio text cross-attention (3), then the
audio-to-video (4) and video-to-audio (5) cross-attention (2 to 5 only where the latent has an audio stream). The
attention perturbations act on call 0 only, the block methods on the video stream only (the audio stream runs its
block as usual), the text methods on the video's text cross-attention only: the audio stream's own attention is never
changed, it only sees the video as the video changes."""
from __future__ import annotations

import torch

from .base import BlockStack, TextEntry


class LTXV(BlockStack):
    name = "ltxv"
    label = "LTXV"
    config_classes = ("LTXV",)
    model_class = "LTXVModel"
    blocks_attribute = "transformer_blocks"
    text_entry = TextEntry.BLOCK_CROSS_ATTENTION
    time_embeddings = ("adaln_single.emb.timestep_embedder",)
    refused = frozenset({"S-CFG", "SAG"})

    def matches(self, diffusion_model) -> bool:
        return type(diffusion_model).__name__ == self.model_class and super().matches(diffusion_model)

    def cross_call_index(self, block: torch.nn.Module) -> int:
        return 1

    def text_widths(self, diffusion_model) -> tuple[int, ...]:
        """T5's width, the caption projection's input (the model's width where it ran before the connector)."""
        dm = diffusion_model
        if getattr(dm, "caption_proj_before_connector", False):
            return (dm.inner_dim,)
        return (dm.caption_projection.linear_1.in_features,)

    def embed_text(self, diffusion_model, tokens: torch.Tensor) -> torch.Tensor:
        """The caption projection the forward applies (none where it ran before the connector)."""
        if getattr(diffusion_model, "caption_proj_before_connector", False):
            return tokens
        return diffusion_model.caption_projection(tokens)


class LTX2(LTXV):
    name = "ltx2"
    label = "LTX-2"
    config_classes = ("LTXAV",)
    model_class = "LTXAVModel"
    block_text = "v_context"          # the video stream's text context in the "dit" block args
    block_stream = 0                  # "img" is (video, audio)
    text_cross_calls = (1,)           # the video's text cross-attention, never the audio's (call 3)

    def text_widths(self, diffusion_model) -> tuple[int, ...]:
        """The [video | audio] context its connectors make, or the text encoder's output they run on in
        preprocess_text_embeds (LTX-2.0: caption_channels wide each; LTX-2.3: its two cross-attention widths)."""
        dm = diffusion_model
        if dm.caption_proj_before_connector:
            return dm.cross_attention_dim + dm.audio_cross_attention_dim, dm.caption_channels
        return 2 * dm.caption_channels, dm.caption_channels

    def embed_text(self, diffusion_model, tokens: torch.Tensor) -> torch.Tensor:
        """The video stream's part of the [video | audio] context, projected as the forward does."""
        dm = diffusion_model
        video = dm.caption_channels if not dm.caption_proj_before_connector else dm.inner_dim
        return super().embed_text(dm, tokens[..., :video])


LTXV_FAMILY = LTXV()
LTX2_FAMILY = LTX2()
