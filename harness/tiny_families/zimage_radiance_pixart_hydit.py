"""Z-Image (a Lumina2 NextDiT with Z-Image's modulation and token padding), Chroma Radiance (Chroma's blocks in pixel
space with a NeRF decoder head), PixArt Sigma and HunyuanDiT (whose attention calls get no transformer_options)."""
from __future__ import annotations

import torch

from . import TinyFamily

CTX = 64
# ComfyUI's model detection for Z-Image (dim 3840) at small widths: equal q and kv heads, qk norms, Z-Image's
# modulation, time scale 1000 and text and image tokens padded to multiples of 32 (checkpoints with cap_pad_token).
# dim 256: Z-Image's modulation takes min(dim, 256) features from a 256-wide time embedding
_ZIMAGE = dict(image_model="lumina2", patch_size=2, in_channels=16, dim=256, n_layers=2, n_refiner_layers=1,
               n_heads=4, n_kv_heads=4, qk_norm=True, cap_feat_dim=CTX, axes_dims=[16, 24, 24],
               axes_lens=[1536, 512, 512], rope_theta=256.0, ffn_dim_multiplier=8.0 / 3.0, multiple_of=16,
               z_image_modulation=True, time_scale=1000.0, pad_tokens_multiple=32)
# Chroma Radiance: 3 pixel channels at image resolution, cut into patch_size x patch_size patches (16 in the real
# model), one token each; the NeRF head decodes each patch's pixels from its token
_RADIANCE = dict(image_model="chroma_radiance", in_channels=3, out_channels=3, context_in_dim=CTX, hidden_size=64,
                 mlp_ratio=2.0, num_heads=2, depth=2, depth_single_blocks=2, axes_dim=[8, 12, 12], theta=10000,
                 patch_size=4, qkv_bias=True, in_dim=64, out_dim=64, hidden_dim=64, n_layers=2, nerf_hidden_size=16,
                 nerf_mlp_ratio=2, nerf_depth=2, nerf_max_freqs=4, nerf_tile_size=0, nerf_final_head_type="conv",
                 nerf_embedder_dtype=torch.float32)
_RADIANCE_FIELDS = {"txt_ids_dims": [], "vec_in_dim": None, "use_x0": False, "use_sequential_txt_ids": False}
_PIXART = dict(image_model="pixart_sigma", patch_size=2, in_channels=4, hidden_size=64, num_heads=2, depth=2,
               caption_channels=CTX, model_max_length=8, micro_condition=False)
# depth 4: the last block takes the long skip of the first, as the real 40 blocks do
HYDIT_TEXT, HYDIT_T5 = 8, 32
_HYDIT = dict(image_model="hydit", hidden_size=64, num_heads=2, depth=4, patch_size=2, in_channels=4,
              text_states_dim=CTX, text_states_dim_t5=HYDIT_T5, text_len=HYDIT_TEXT, text_len_t5=HYDIT_TEXT,
              mlp_ratio=2.0)


def hydit_context(g: torch.Generator, tokens: int) -> torch.Tensor:
    """The CLIP context, padded to the model's text_len as its text encoder always gives it."""
    return torch.randn(1, HYDIT_TEXT, CTX, generator=g)


def hydit_cond(g: torch.Generator) -> dict:
    """The mT5 context and both masks (the last token of each is padding)."""
    mask = torch.ones(1, HYDIT_TEXT)
    mask[:, -1] = 0
    return {"attention_mask": mask, "conditioning_mt5xl": torch.randn(1, HYDIT_TEXT, HYDIT_T5, generator=g),
            "attention_mask_mt5xl": mask.clone()}


FAMILIES = [
    TinyFamily(key="zimage", label="Z-Image", config="ZImage", unet_config=_ZIMAGE, latent=(16, 8, 8), order=60,
               notes="text and image tokens padded to multiples of 32: perturbations leave the padding out"),
    TinyFamily(key="chroma_radiance", label="Chroma Radiance", config="ChromaRadiance", unet_config=_RADIANCE,
               latent=(3, 16, 16), order=61, new_fields=("comfy.ldm.chroma_radiance.model", "ChromaRadianceParams",
                                                         _RADIANCE_FIELDS),
               notes="pixel space: one token per 16x16 pixel patch"),
    TinyFamily(key="pixart_sigma", label="PixArt Sigma", config="PixArtSigma", unet_config=_PIXART,
               latent=(4, 48, 48), order=62,
               notes="its attention calls get no transformer_options: whole-block methods only"),
    TinyFamily(key="hunyuan_dit", label="HunyuanDiT", config="HunyuanDiT", unet_config=_HYDIT, latent=(4, 8, 8),
               order=63, context_fn=hydit_context, extra_cond=hydit_cond,
               notes="its attention calls get no transformer_options: whole-block methods only"),
]
