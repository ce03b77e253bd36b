"""Tiny Cosmos Predict2 (image and video), Anima and Ernie Image models: hidden 64, 2 heads, 2 blocks."""
from __future__ import annotations

from . import TinyFamily

# MiniTrainDIT (comfy/ldm/cosmos/predict2.py) as model detection builds it, at tiny width; head_dim 32 splits into
# RoPE axes 10 + 10 + 12
_PREDICT2 = dict(image_model="cosmos_predict2", max_img_h=240, max_img_w=240, max_frames=128, in_channels=16,
                 out_channels=16, patch_spatial=2, patch_temporal=1, concat_padding_mask=True, model_channels=64,
                 num_blocks=2, num_heads=2, mlp_ratio=2.0, crossattn_emb_channels=64, pos_emb_cls="rope3d",
                 pos_emb_learnable=True, pos_emb_interpolation="crop", min_fps=1, max_fps=30, use_adaln_lora=True,
                 adaln_lora_dim=16, extra_per_block_abs_pos_emb=False, rope_h_extrapolation_ratio=4.0,
                 rope_w_extrapolation_ratio=4.0, rope_t_extrapolation_ratio=1.0, rope_enable_fps_modulation=False)

FAMILIES = [
    TinyFamily(key="cosmos_predict2", label="Cosmos Predict2", config="CosmosT2IPredict2", unet_config=_PREDICT2,
               latent=(16, 1, 8, 8), order=40,
               notes="text-to-image: a 5-D latent of one frame; self-attention, then cross-attention to the text, "
                     "per block"),
    TinyFamily(key="cosmos_predict2_video", label="Cosmos Predict2 video", config="CosmosI2VPredict2",
               unet_config=dict(_PREDICT2, in_channels=17, rope_h_extrapolation_ratio=3.0,
                                rope_w_extrapolation_ratio=3.0),
               latent=(16, 3, 8, 8), order=41,
               notes="image-to-video: 3 latent frames, the mask channel concatenated by the model"),
    # Anima: the Cosmos Predict2 DiT behind an LLM adapter (fixed size) that embeds the prompt before sampling
    TinyFamily(key="anima", label="Anima", config="Anima", unet_config=dict(_PREDICT2, image_model="anima"),
               latent=(16, 1, 8, 8), order=42,
               notes="the Cosmos Predict2 DiT; the prompt's LLM adapter runs in the conditioning, not per block"),
    TinyFamily(key="ernie_image", label="Ernie Image", config="ErnieImage",
               unet_config=dict(image_model="ernie", hidden_size=64, num_attention_heads=2, num_layers=2,
                                ffn_hidden_size=128, in_channels=128, out_channels=128, patch_size=1,
                                text_in_dim=64, rope_theta=256, rope_axes_dim=(8, 12, 12)),
               latent=(128, 4, 4), order=43,
               notes="one stream of [image, text] tokens through self-attention layers; ComfyUI's model gives its "
                     "layers no transformer_options and runs no wrapper, so the attention and block "
                     "perturbations refuse it"),
]
