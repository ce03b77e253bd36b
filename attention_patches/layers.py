"""Layer maps: which attention layers a model has, the names users type for them, and our defaults (made by the
model's family adapter, attention_patches/families/)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from .layer_spec import parse_spec, quoted

if TYPE_CHECKING:
    from .families.base import Family


@dataclass(frozen=True)
class Layer:
    group: str          # "input" / "middle" / "output" on UNets, "double" / "single" / "block" on DiTs
    index: int
    sub: int = 0        # transformer index inside a UNet block; 0 on DiTs

    @property
    def name(self) -> str:
        return f"{self.group} {self.index}" + (f":{self.sub}" if self.group in UNET_GROUPS else "")


UNET_GROUPS = ("input", "middle", "output")


@dataclass
class LayerMap:
    family: Family                   # the model's family adapter
    model_name: str                  # the ComfyUI model config's class name, for messages
    layers: list[Layer]
    default: str
    text_first: bool = True          # token order of joint attention
    refiner_calls: int = 0           # attention calls of a forward before its main layers (Lumina2's refiners)

    @property
    def joint(self) -> bool:
        """Self-attention also carries the text tokens."""
        return self.family.joint

    def patch_key(self, layer: Layer) -> tuple:
        """The key of a layer's ComfyUI replace patch."""
        return self.family.patch_key(layer)

    def groups(self) -> list[str]:
        return list(dict.fromkeys(layer.group for layer in self.layers))

    def describe(self) -> str:
        parts = []
        for group in self.groups():
            idx = sorted({layer.index for layer in self.layers if layer.group == group})
            parts.append(f"{group} {idx[0]}-{idx[-1]}" if len(idx) > 1 else f"{group} {idx[0]}")
        return ", ".join(parts)

    def parse(self, spec: str) -> list[Layer]:
        """Resolve a user layer spec such as 'middle', 'input 4-8', 'double 0-3, single 10', 'output 1:0-2'."""
        chosen: list[Layer] = []
        for item in parse_spec((spec or "").strip() or self.default, self.default):
            if item.group not in self.groups():
                raise ValueError(f"unknown layer group {quoted(item.group)} for {self.model_name}; this model has: "
                                 f"{self.describe()}")
            hits = [layer for layer in self.layers if layer.group == item.group
                    and (item.first is None or item.first <= layer.index <= item.last)
                    and (item.sub_first is None or item.sub_first <= layer.sub <= item.sub_last)]
            if not hits:
                raise ValueError(f"layer {quoted(item.text)} does not exist in this {self.model_name} model; it has: "
                                 f"{self.describe()}")
            chosen.extend(layer for layer in hits if layer not in chosen)
        if not chosen:
            raise ValueError(f"no layer selected; this {self.model_name} model has: {self.describe()}")
        return chosen
