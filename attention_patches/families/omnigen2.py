"""OmniGen2: a text refiner and an image refiner, then joint layers over [text, image] tokens, like Lumina2. Its
forward runs no DIFFUSION_MODEL wrappers, so the per-forward wrappers (call count, block hooks) are APPLY_MODEL
wrappers of the BaseModel."""
from __future__ import annotations

import torch

from ..layers import Layer
from .base import diffusion_model_of
from .lumina2 import Lumina2


class Omnigen2(Lumina2):
    name = "omnigen2"
    label = "Omnigen2"
    config_classes = ("Omnigen2",)
    forward_wrapper = "apply_model"
    time_embeddings = ("time_caption_embed.timestep_embedder",)
    refusal_reasons = {"VSF": "OmniGen2 places its text by the prompt's token count (num_tokens), so a negative "
                              "appended to the prompt has no place in its layout"}

    def matches(self, diffusion_model) -> bool:
        return (type(diffusion_model).__name__ == "OmniGen2Transformer2DModel"
                and all(hasattr(diffusion_model, name) for name in ("noise_refiner", "context_refiner", "layers")))

    def token_lengths(self, model, args: tuple, kwargs: dict) -> tuple[int, None]:
        """The text tokens of BaseModel.apply_model's (x, t, c_concat, c_crossattn, ...); every other token is
        image. Reference images add refiner calls the count would take for joint layers: an error, not a wrong
        layer."""
        if kwargs.get("ref_latents") is not None:
            raise RuntimeError("Guidance Zoo: OmniGen2 with reference images is not supported by the attention hook "
                               "yet (their refiner shifts the counted attention calls)")
        context = args[3] if len(args) > 3 else kwargs["c_crossattn"]
        return context.shape[1], None

    def text_widths(self, diffusion_model) -> tuple[int, ...]:
        """Qwen2.5-VL's width, the caption embedder's input."""
        return (diffusion_model.time_caption_embed.caption_embedder[1].in_features,)

    def block_modules(self, model) -> dict[Layer, torch.nn.Module]:
        return super().block_modules(diffusion_model_of(model))


OMNIGEN2 = Omnigen2()
