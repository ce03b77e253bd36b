"""Per-family layer maps: which attention layers a model has, the names users type for them, and our defaults."""
from __future__ import annotations

from dataclasses import dataclass, field

from .layer_spec import parse_spec, quoted


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
    family: str                      # structure family: unet, flux, mmdit, qwen, wan, lumina2
    model_name: str                  # the ComfyUI model config's class name, for messages
    layers: list[Layer]
    default: str
    text_first: bool = True          # token order of joint attention
    joint: bool = False              # self-attention also carries text tokens
    dit_keys: dict[str, str] = field(default_factory=dict)   # our group -> ComfyUI "dit" replace key prefix
    refiner_calls: int = 0           # Lumina2: attention calls before the main layers

    def patch_key(self, layer: Layer) -> tuple:
        """The key of a layer's ComfyUI replace patch: (block, index, transformer_index) for UNet attn1/attn2, the
        "dit" block key on DiTs with block patches."""
        if self.family == "unet":
            return layer.group, layer.index, layer.sub
        return self.dit_keys[layer.group], layer.index

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


def _count_transformers(block) -> int:
    return sum(len(m.transformer_blocks) for m in block.modules() if type(m).__name__ == "SpatialTransformer")


def _unet_layers(dm) -> list[Layer]:
    layers = []
    for group, blocks in (("input", dm.input_blocks), ("middle", [dm.middle_block]), ("output", dm.output_blocks)):
        for i, block in enumerate(blocks):
            layers.extend(Layer(group, i, t) for t in range(_count_transformers(block)))
    return layers


def _stack(group: str, n: int) -> list[Layer]:
    return [Layer(group, i) for i in range(n)]


def _second_or_first(group: str, n: int) -> str:
    return f"{group} {min(1, n - 1)}"


def layer_map(model_patcher) -> LayerMap:
    """Describe the attention layers of a ComfyUI model, or raise naming the unsupported model."""
    base = model_patcher.model
    dm = base.diffusion_model
    name = type(getattr(base, "model_config", base)).__name__
    if hasattr(dm, "input_blocks") and hasattr(dm, "middle_block"):
        layers = _unet_layers(dm)
        default = "middle" if any(layer.group == "middle" for layer in layers) else layers[-1].name
        return LayerMap("unet", name, layers, default)
    if hasattr(dm, "double_blocks") and hasattr(dm, "single_blocks"):
        layers = _stack("double", len(dm.double_blocks)) + _stack("single", len(dm.single_blocks))
        image_first = bool(len(dm.double_blocks)) and getattr(dm.double_blocks[0], "flipped_img_txt", False)
        return LayerMap("flux", name, layers, _second_or_first("double", len(dm.double_blocks)), joint=True,
                        text_first=not image_first, dit_keys={"double": "double_block", "single": "single_block"})
    if hasattr(dm, "joint_blocks"):
        n = len(dm.joint_blocks)
        return LayerMap("mmdit", name, _stack("block", n), _second_or_first("block", n), joint=True,
                        dit_keys={"block": "double_block"})
    if type(dm).__name__.startswith("QwenImage") and hasattr(dm, "transformer_blocks"):
        n = len(dm.transformer_blocks)
        return LayerMap("qwen", name, _stack("block", n), _second_or_first("block", n), joint=True,
                        dit_keys={"block": "double_block"})
    if type(dm).__name__.endswith("WanModel") and hasattr(dm, "blocks"):
        n = len(dm.blocks)
        return LayerMap("wan", name, _stack("block", n), _second_or_first("block", n), joint=False,
                        dit_keys={"block": "double_block"})
    if hasattr(dm, "noise_refiner") and hasattr(dm, "context_refiner") and hasattr(dm, "layers"):
        n = len(dm.layers)
        return LayerMap("lumina2", name, _stack("block", n), _second_or_first("block", n), joint=True,
                        refiner_calls=len(dm.noise_refiner) + len(dm.context_refiner))
    raise ValueError(f"model {name} ({type(dm).__name__}) is not supported by the Guidance Zoo attention hook yet")
