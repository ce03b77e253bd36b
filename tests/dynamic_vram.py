"""ComfyUI 0.33's dynamic VRAM loader (comfy.model_patcher.ModelPatcherDynamic, the default on NVIDIA GPUs) on the
CPU, for tests.

Two things keep that loader off a CPU, and only those are stood in for, while a test holds the `dynamic_vram`
fixture: ModelPatcherDynamic.__new__ hands a CPU model to the classic ModelPatcher, and comfy_aimdo's HostBuffer
(pinned host memory) needs aimdo's native library, which loads only beside a CUDA or ROCm driver. On a CPU load
device the loader keeps no VRAM arena (its vbar is None), so the rest is ModelPatcherDynamic's own code: its load,
clone, hook refusal and non-dynamic delegate.
"""
import pytest

import tiny_models as tm
import comfy.model_patcher

AVAILABLE = hasattr(comfy.model_patcher, "ModelPatcherDynamic")
SKIP_REASON = "this ComfyUI has no dynamic VRAM loader (comfy.model_patcher.ModelPatcherDynamic is 0.33+)"


class CpuHostBuffer:
    """Stands in for comfy_aimdo's pinned host buffer: one that nothing is pinned into on the CPU."""

    def __init__(self, size: int = 0, prewarm: int = 0, max_grow_size: int = 0, mark_cold: bool = True):
        self.size = 0

    def truncate(self, offset: int, do_unregister: bool = True) -> None:
        self.size = offset


def _no_cpu_reroute(cls, *args, **kwargs):
    return object.__new__(cls)


@pytest.fixture
def dynamic_vram(monkeypatch):
    """ModelPatcherDynamic constructible on the CPU while the test runs."""
    import comfy_aimdo.host_buffer
    monkeypatch.setattr(comfy_aimdo.host_buffer, "HostBuffer", CpuHostBuffer)
    monkeypatch.setattr(comfy.model_patcher.ModelPatcherDynamic, "__new__", _no_cpu_reroute)


class Loads:
    """How often load() built a model (the non-dynamic delegate reloads through it)."""
    count = 0


def load(family: str, seed: int = 0, disable_dynamic: bool = False) -> comfy.model_patcher.ModelPatcher:
    """A tiny model as 0.33's core loaders give it: on ModelPatcherDynamic unless disable_dynamic, with the
    cached_patcher_init factory (comfy/sd.py's form) that get_non_dynamic_delegate() reloads the model by."""
    Loads.count += 1
    classic = tm.make_model(family, seed)
    patcher = classic if disable_dynamic else comfy.model_patcher.ModelPatcherDynamic(classic.model, tm.CPU, tm.CPU)
    patcher.cached_patcher_init = (load, (family, seed))
    return patcher


def is_dynamic(patcher) -> bool:
    return isinstance(patcher, comfy.model_patcher.ModelPatcherDynamic)
