"""Wan 2.2 TI2V 5B (48-channel latent) and the edit models: Flux Kontext, Flux2 and Qwen-Image-Edit with reference
latents in the conditioning (what ComfyUI's ReferenceLatent node gives), whose tokens the models append after the
generated image tokens."""
from __future__ import annotations

import torch

from . import TinyFamily

CTX = 64
_FLUX = dict(image_model="flux", in_channels=16, out_channels=16, vec_in_dim=32, context_in_dim=CTX, hidden_size=64,
             mlp_ratio=2.0, num_heads=2, depth=2, depth_single_blocks=2, axes_dim=[8, 12, 12], theta=10000,
             patch_size=2, qkv_bias=True, guidance_embed=True)
_FLUX2 = dict(image_model="flux2", in_channels=128, out_channels=128, vec_in_dim=None, context_in_dim=CTX,
              hidden_size=64, mlp_ratio=3.0, num_heads=2, depth=2, depth_single_blocks=2, axes_dim=[8, 8, 8, 8],
              theta=2000, patch_size=1, qkv_bias=False, guidance_embed=True, global_modulation=True,
              mlp_silu_act=True, ops_bias=False, default_ref_method="index", ref_index_scale=10.0)
_QWEN = dict(image_model="qwen_image", in_channels=64, out_channels=16, num_layers=2, attention_head_dim=32,
             num_attention_heads=2, joint_attention_dim=CTX, axes_dims_rope=(8, 12, 12))
# what ComfyUI's model detection gives the 5B checkpoint (dim 3072, 30 layers), at tiny widths: in_dim = out_dim = 48
_WAN22_5B = dict(image_model="wan2.1", model_type="t2v", dim=64, out_dim=48, num_heads=2, ffn_dim=128, num_layers=2,
                 patch_size=(1, 2, 2), freq_dim=32, window_size=(-1, -1), qk_norm=True, cross_attn_norm=True,
                 eps=1e-6, in_dim=48, text_dim=CTX)


def references(*shape: int):
    """extra_cond giving one reference latent of `shape` (its own size, so its token count differs from the generated
    image's), the same for the positive and the negative prompt, as an edit workflow's ReferenceLatent gives it."""
    def extra(g: torch.Generator) -> dict:
        return {"reference_latents": [torch.randn(shape, generator=torch.Generator().manual_seed(7))]}
    return extra


# core SkipLayerGuidanceDiT's skip also skips the reference tokens, whose rows our skip leaves as the block computes
EDIT_EXTRA = {"core_slg": False}
REFERENCE_NOTE = ("reference tokens: perturbations act on the generated image tokens only; the reference latent's "
                  "tokens are left as the plain model computes them")

FAMILIES = [
    TinyFamily(key="wan22_5b", label="Wan 2.2 TI2V 5B", config="WAN22_T2V", unet_config=_WAN22_5B,
               latent=(48, 2, 8, 8), order=70,
               notes="the 48-channel latent of the Wan 2.2 VAE, text-to-video; the 14B high/low-noise pair has "
                     "Wan 2.1's model class (the Wan row) and runs as two models in one graph "
                     "(`workflows/wan22_14b_two_expert_apg.json`)"),
    TinyFamily(key="flux_kontext", label="Flux Kontext", config="Flux", unet_config=_FLUX, latent=(16, 8, 8),
               pooled=32, order=71, extra_cond=references(1, 16, 8, 6),
               new_fields=("comfy.ldm.flux.model", "FluxParams", {"txt_ids_dims": []}), notes=REFERENCE_NOTE,
               extra=EDIT_EXTRA),
    TinyFamily(key="flux2_edit", label="Flux2 with reference", config="Flux2", unet_config=_FLUX2,
               latent=(128, 4, 4), order=72, extra_cond=references(1, 128, 4, 3),
               new_fields=("comfy.ldm.flux.model", "FluxParams", {"txt_ids_dims": [3]}), notes=REFERENCE_NOTE,
               extra=EDIT_EXTRA),
    TinyFamily(key="qwen_image_edit", label="Qwen-Image-Edit", config="QwenImage", unet_config=_QWEN,
               latent=(16, 1, 8, 8), order=73, extra_cond=references(1, 16, 1, 8, 6), notes=REFERENCE_NOTE,
               extra=EDIT_EXTRA),
]
