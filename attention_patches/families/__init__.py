"""The family adapters and the registry that maps a model to its adapter: by its ComfyUI config class, then by its
structure; a model no adapter covers gets an error naming it."""
from __future__ import annotations

import importlib
import pkgutil

import torch

from ..layers import LayerMap
from .base import AttentionReach, BlockReach, Family, TextEntry
from .flux import FLUX
from .lumina2 import LUMINA2
from .mmdit import MMDIT
from .qwen import QWEN_IMAGE
from .unet import UNET
from .wan import WAN

FIRST: tuple[Family, ...] = (UNET, FLUX, MMDIT, QWEN_IMAGE, WAN, LUMINA2)


def _discovered() -> tuple[Family, ...]:
    """The adapters of the other modules of this package (one module per family: adding a family adds a file)."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        found += [v for v in vars(module).values() if isinstance(v, Family) and v not in FIRST and v not in found]
    return tuple(found)


FAMILIES: tuple[Family, ...] = FIRST + _discovered()
BY_CONFIG = {name: family for family in FAMILIES for name in family.config_classes}

__all__ = ["AttentionReach", "BlockReach", "FAMILIES", "Family", "TextEntry", "family_for", "layer_map",
           "model_names"]


def model_names(base_model) -> tuple[str, torch.nn.Module]:
    """(the ComfyUI model config's class name, the diffusion model) of a ComfyUI BaseModel (ModelPatcher.model)."""
    return type(getattr(base_model, "model_config", base_model)).__name__, base_model.diffusion_model


def family_for(diffusion_model: torch.nn.Module, config_name: str = "") -> Family:
    """The adapter of a diffusion model: its config class's, then the first whose structure it has (a config class's
    adapter too must find its structure); or ValueError naming the model."""
    listed = BY_CONFIG.get(config_name)
    for family in ((listed,) if listed else ()) + FAMILIES:
        if family.matches(diffusion_model):
            return family
    name = f"{config_name} ({type(diffusion_model).__name__})" if config_name else type(diffusion_model).__name__
    raise ValueError(f"model {name} is not supported by the Guidance Zoo attention hook yet")


def layer_map(model_patcher) -> LayerMap:
    """The attention layers of a ComfyUI model and its family's adapter, or ValueError naming the unsupported model."""
    config_name, diffusion_model = model_names(model_patcher.model)
    return family_for(diffusion_model, config_name).layer_map(config_name, diffusion_model)
