"""The tiny-model recipes of the families added beside the first nine (harness/tiny_models.py): one module per family
here, each defining FAMILY (or FAMILIES), a TinyFamily. No ComfyUI import: the config class is named, and a ComfyUI
that lacks it (0.3.75 for the newer families) simply has no such tiny model, so its cells say which versions hold."""
from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class TinyFamily:
    key: str                        # test id, e.g. "hunyuan_video"
    label: str                      # its support-matrix column, e.g. "HunyuanVideo"
    config: str                     # ComfyUI model config class (comfy.supported_models)
    unet_config: dict
    latent: tuple                   # one sample's latent shape
    pooled: int | None = None       # pooled_output width, None when the family has none
    order: int = 100                # column order after the first nine
    context_dim: int = 64           # text context width
    # extra conditioning entries of one prompt (guidance, reference latents, attention masks...), given a generator
    extra_cond: Callable | None = None
    extra_cond_tokens: bool = False  # extra_cond takes (generator, tokens): its entries depend on the prompt length
    # the text context of one prompt, (generator, tokens) -> tensor, when it is not (1, tokens, context_dim)
    context_fn: Callable | None = None
    # fields ComfyUI 0.33 added to the model's params dataclass: (module, dataclass name, {field: value})
    new_fields: tuple | None = None
    notes: str = ""                 # what the README should say about the family (reference tokens, audio...)
    extra: dict = field(default_factory=dict)


def discover() -> list[TinyFamily]:
    """Every TinyFamily of this package's modules, in column order."""
    found = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        found += list(getattr(module, "FAMILIES", ())) + ([module.FAMILY] if hasattr(module, "FAMILY") else [])
    return sorted(found, key=lambda f: (f.order, f.key))


TINY_FAMILIES = discover()
