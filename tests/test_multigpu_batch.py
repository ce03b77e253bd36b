"""ComfyUI 0.33's multi-GPU batch path (comfy.samplers._calc_cond_batch_multigpu) driven on the CPU: ComfyUI's own
MultiGPU clones (comfy.multigpu.create_multigpu_deepclones) on two devices, cpu and cpu:1 (ComfyUI's device list is
the one stand-in), so each step's conds are split over two model copies run at once by ComfyUI's thread pool. Plain
CFG and the two-model passes (a separate checkpoint, a weight hook) equal the single-device run. PAG's batched extra
pass and NAG's rows do not survive the split yet: they raise "reached none of its layers" at sampling, PAG on most
runs (not all: it passed on the first run of a process), NAG on every run seen (xfail below)."""
import pytest
import torch

import tiny_models as tm
import comfy.samplers

if not hasattr(comfy.samplers, "_calc_cond_batch_multigpu"):
    pytest.skip("this ComfyUI has no multi-GPU batch path (comfy.samplers._calc_cond_batch_multigpu is 0.33+)",
                allow_module_level=True)

import comfy.model_management  # noqa: E402
import comfy.multigpu  # noqa: E402
import comfy.patcher_extension  # noqa: E402
import dynamic_vram as dv  # noqa: E402
from test_two_model import CFG, with_lora  # noqa: E402
from test_two_model_dynamic_vram import nag  # noqa: E402
from tiny_models import assert_close  # noqa: E402

from guidance_zoo.nodes.autoguidance import Autoguidance  # noqa: E402
from guidance_zoo.nodes.pag import PAG  # noqa: E402
from guidance_zoo.nodes.unconditional_prior import UnconditionalPrior  # noqa: E402

FAMILY = "sd3"
DEVICES = [tm.CPU, torch.device("cpu", 1)]


@pytest.fixture(autouse=True)
def two_devices(monkeypatch):
    """ComfyUI sees two torch devices, so its MultiGPU node logic makes a clone for the second one."""
    monkeypatch.setattr(comfy.model_management, "get_all_torch_devices", lambda exclude_current=False: DEVICES)


def devices_used(model) -> tuple:
    """A clone of model recording the device of every BaseModel that ran a model evaluation."""
    used, clone = set(), model.clone()

    def record(executor, x, *args, **kwargs):
        used.add(str(executor.class_obj.device))
        return executor(x, *args, **kwargs)
    clone.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "test_devices", record)
    return clone, used


SPLIT_BREAKS = pytest.mark.xfail(raises=RuntimeError, reason=(
    "raises 'reached none of its layers' on the split; likely the per-pass attention call state shared by two threads"))
CASES = {"cfg": lambda m: m, "pag": pytest.param(lambda m: PAG.execute(m, 3.0, "").result[0], marks=SPLIT_BREAKS),
         "autoguidance_separate": lambda m: Autoguidance.execute(m, dv.load(FAMILY, 1, True), 2.0).result[0],
         "autoguidance_weight_hook": lambda m: Autoguidance.execute(with_lora(m), m, 2.0).result[0],
         "unconditional_prior_weight_hook": lambda m: UnconditionalPrior.execute(with_lora(m), m).result[0],
         "nag": pytest.param(nag, marks=SPLIT_BREAKS)}


@pytest.mark.parametrize("make", CASES.values(), ids=CASES.keys())
def test_split_over_two_devices_equals_one_device(make):
    single = tm.ksample(make(dv.load(FAMILY, disable_dynamic=True)), FAMILY, cfg=CFG)
    multi = comfy.multigpu.create_multigpu_deepclones(dv.load(FAMILY, disable_dynamic=True), len(DEVICES))
    counted, used = devices_used(make(multi))
    assert_close(tm.ksample(counted, FAMILY, cfg=CFG), single, rel=1e-5)
    assert used == {"cpu", "cpu:1"}
