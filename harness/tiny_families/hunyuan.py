"""HunyuanVideo, HunyuanVideo 1.5 and HunyuanImage 2.1: one ComfyUI model (comfy/ldm/hunyuan_video), Flux's double
and single blocks after a text token refiner, at tiny widths. ComfyUI 0.33 puts the text tokens first in the joint
sequence, 0.3.75 puts them last. HunyuanImage 2.1 appends ByT5 glyph tokens to the text stream; HunyuanVideo 1.5
puts its vision (image-to-video) and ByT5 tokens before the prompt's."""
from __future__ import annotations

import torch

from . import TinyFamily

CTX = 64
BYT5 = 1472                                 # ByT5Mapper's fixed input width
VISION = 1152                               # HunyuanVideo 1.5's SigLIP width (its config class's vision_in_dim)
_COMMON = dict(image_model="hunyuan_video", context_in_dim=CTX, hidden_size=64, mlp_ratio=2.0, num_heads=2, depth=2,
               depth_single_blocks=2, theta=256, qkv_bias=True, meanflow=False)
_HUNYUAN_VIDEO = dict(_COMMON, in_channels=16, out_channels=16, vec_in_dim=32, axes_dim=[8, 12, 12],
                      patch_size=[1, 2, 2], guidance_embed=True, byt5=False, use_cond_type_embedding=False,
                      vision_in_dim=None)
# 2-D patches; its text stream is [prompt, ByT5 glyph tokens]
_HUNYUAN_IMAGE21 = dict(_COMMON, in_channels=64, out_channels=64, vec_in_dim=None, axes_dim=[16, 16],
                        patch_size=[1, 1], guidance_embed=False, byt5=True, use_cond_type_embedding=False,
                        vision_in_dim=None)
# 32 latent + 32 image-conditioning channels + 1 mask channel (the zero image of text-to-video); its text stream is
# [vision tokens, ByT5 glyph tokens, prompt]
_HUNYUAN_VIDEO15 = dict(_COMMON, in_channels=65, out_channels=32, vec_in_dim=None, axes_dim=[8, 12, 12],
                        patch_size=[1, 1, 1], guidance_embed=False, byt5=True, use_cond_type_embedding=True,
                        vision_in_dim=VISION)
# added to HunyuanVideoParams after 0.3.75
_NEW = ("comfy.ldm.hunyuan_video.model", "HunyuanVideoParams", {"meanflow_sum": False})
_NEW_15 = ("comfy.ldm.hunyuan_video.model", "HunyuanVideoParams", {"meanflow_sum": True})


def _byt5(g: torch.Generator) -> torch.Tensor:
    """ByT5 glyph features of a quoted text in the prompt, the same for every prompt of a run."""
    return torch.randn(1, 3, BYT5, generator=torch.Generator().manual_seed(11))


def _image21_extra(g: torch.Generator) -> dict:
    return {"conditioning_byt5small": _byt5(g)}


class _VisionOutput:
    """What CLIPVisionEncode gives (the part HunyuanVideo 1.5's image-to-video conditioning reads)."""

    def __init__(self, last_hidden_state: torch.Tensor):
        self.last_hidden_state = last_hidden_state


def _video15_extra(g: torch.Generator) -> dict:
    vision = torch.randn(1, 2, VISION, generator=torch.Generator().manual_seed(12))
    return {"conditioning_byt5small": _byt5(g), "clip_vision_output": _VisionOutput(vision)}


NOTE = ("the text token refiner's attention before the blocks is left as it is; perturbations act on the joint "
        "attention of the double and single blocks")

FAMILIES = [
    TinyFamily(key="hunyuan_video", label="HunyuanVideo", config="HunyuanVideo", unet_config=_HUNYUAN_VIDEO,
               latent=(16, 2, 8, 8), pooled=32, order=10, new_fields=_NEW, notes=NOTE),
    TinyFamily(key="hunyuan_video15", label="HunyuanVideo 1.5", config="HunyuanVideo15",
               unet_config=_HUNYUAN_VIDEO15, latent=(32, 2, 4, 4), order=11, extra_cond=_video15_extra,
               new_fields=_NEW_15, notes=NOTE + "; ByT5 glyph and vision tokens join the text stream"),
    TinyFamily(key="hunyuan_image21", label="HunyuanImage 2.1", config="HunyuanImage21",
               unet_config=_HUNYUAN_IMAGE21, latent=(64, 8, 8), order=12, extra_cond=_image21_extra,
               new_fields=_NEW, notes=NOTE + "; ByT5 glyph tokens join the text stream"),
]
