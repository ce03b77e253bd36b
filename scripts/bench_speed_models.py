"""The models, inputs and core ComfyUI peer nodes of scripts/bench_speed.py: mid-size random-weight models of four
families built from ComfyUI's own classes (the tests' tiny configs widened and deepened), or the tiny ones (--quick).
"""
import ctypes
import importlib
import time

import torch

import comfy.sample
import tiny_models as tm

CFG = 4.0
CTX = tm.CTX
# family: (unet_config overrides, latent shape of one sample, text tokens); image tokens about 1024 each
MID = {
    "sd15": (dict(model_channels=256, channel_mult=[1, 2, 2], num_res_blocks=[1, 1, 1], transformer_depth=[1, 1, 1],
                  transformer_depth_output=[1] * 6, image_size=32), (4, 32, 32), 77),
    "sd3": (dict(depth=6, pos_embed_max_size=32, num_patches=1024, context_embedder_config={
        "target": "torch.nn.Linear", "params": {"in_features": CTX, "out_features": 384}}), (16, 64, 64), 154),
    "flux": (dict(hidden_size=384, num_heads=6, depth=2, depth_single_blocks=4, axes_dim=[16, 24, 24],
                  mlp_ratio=4.0), (16, 64, 64), 256),
    "wan21": (dict(dim=384, num_heads=6, ffn_dim=1536, num_layers=4, freq_dim=64), (16, 4, 32, 32), 256),
}
FAMILIES = tuple(MID)
# core node: (comfy_extras module, class, inputs other than their defaults); one missing in this ComfyUI is skipped
PEERS = {
    "core PAG": ("nodes_pag", "PerturbedAttentionGuidance", {}),
    "core SLG": ("nodes_slg", "SkipLayerGuidanceDiT", {"double_layers": "1", "single_layers": "1"}),
    "core APG": ("nodes_apg", "APG", {}),
    "core TCFG": ("nodes_tcfg", "TCFG", {}),
    "core RescaleCFG": ("nodes_model_advanced", "RescaleCFG", {}),
    "core CFGZeroStar": ("nodes_cfg", "CFGZeroStar", {}),
    "core NAG": ("nodes_nag", "NAGuidance", {}),
}


class Setup:
    """One family's model, prompts and latent at mid size (or the tests' tiny size when quick)."""

    def __init__(self, family: str, quick: bool):
        self.family, self.quick = family, quick
        overrides, shape, tokens = ({}, tm.FAMILIES[family][2], 7) if quick else MID[family]
        self.overrides, self.shape, self.tokens = overrides, shape, tokens
        self.model = self.build(seed=0)
        self.conds = tm.make_conds(family, tokens=tokens)
        self.latent = torch.zeros((1,) + tuple(shape))

    def build(self, seed: int):
        """A random-weight ModelPatcher of this family and size."""
        return tm.make_model(self.family, seed=seed, **self.overrides)

    def describe(self) -> str:
        """'sd3: 30.8M parameters, latent 16x64x64, 154 text tokens'."""
        params = sum(p.numel() for p in self.model.model.diffusion_model.parameters()) / 1e6
        latent = "x".join(map(str, self.shape))
        return f"{self.family}: {params:.1f}M parameters, latent {latent}, {self.tokens} text tokens"

    def sample(self, model, steps: int, clock=time.process_time) -> float:
        """Seconds per step of a KSampler run (euler, cfg 4) on `model`, by `clock`."""
        noise = comfy.sample.prepare_noise(self.latent, 0)
        start = clock()
        comfy.sample.sample(model, noise, steps, CFG, "euler", "normal", self.conds[0], self.conds[1], self.latent,
                            denoise=1.0, disable_pbar=True, seed=0)
        return (clock() - start) / steps


class Links:
    """The linked inputs a node cannot default, by input type: another prompt, a style latent, a second model (built
    on first use, counted)."""

    def __init__(self, setup: Setup):
        self.setup, self.second, self.counter = setup, None, None
        self.prompt = tm.make_conds(setup.family, seed=7, tokens=setup.tokens)[0]
        self.style = {"samples": torch.randn(setup.latent.shape, generator=torch.Generator().manual_seed(3))}

    def value(self, node_input):
        if node_input.io_type == "MODEL" and self.second is None:
            self.second, self.counter = tm.counted(self.setup.build(seed=1))
        return {"CONDITIONING": self.prompt, "LATENT": self.style, "MODEL": self.second}.get(node_input.io_type)


def peer(name: str):
    """model -> the core node applied at its defaults (and PEERS' inputs); None where this ComfyUI lacks it."""
    module, cls, extra = PEERS[name]
    try:
        node = getattr(importlib.import_module(f"comfy_extras.{module}"), cls)
    except (ImportError, AttributeError):
        return None
    if hasattr(node, "define_schema"):
        inputs = {i.id: i.default for i in node.define_schema().inputs[1:] if getattr(i, "default", None) is not None}
        return lambda model: node.execute(model, **{**inputs, **extra}).result[0]
    required = node.INPUT_TYPES()["required"]
    inputs = {k: spec[1]["default"] for k, spec in required.items() if len(spec) > 1 and "default" in spec[1]}
    return lambda model: getattr(node(), node.FUNCTION)(model, **{**inputs, **extra})[0]


def memory_now() -> int | None:
    """Resident bytes now, after handing freed heap memory back (glibc) and resetting the high-water mark; None where
    /proc does not allow it."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
        return _status("VmRSS")
    except OSError:
        return None


def memory_peak() -> int | None:
    """The resident high-water mark in bytes since memory_now()."""
    try:
        return _status("VmHWM")
    except OSError:
        return None


def _status(field: str) -> int:
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith(field + ":"))
    return int(line.split()[1]) * 1024


def machine() -> str:
    """Cores, CPU model, torch and ComfyUI versions."""
    import os

    import comfyui_version
    with open("/proc/cpuinfo") as cpuinfo:
        model = next((line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name")), "?")
    return (f"{os.cpu_count()} cores ({model}), torch {torch.__version__}, ComfyUI {comfyui_version.__version__}, "
            f"{torch.get_num_threads()} torch thread(s)")
