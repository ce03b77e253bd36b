"""ComfyUI 0.33's multi-GPU batch path (comfy.samplers._calc_cond_batch_multigpu) driven on the CPU: ComfyUI's own
MultiGPU clones (comfy.multigpu.create_multigpu_deepclones) on two devices, cpu and cpu:1 (ComfyUI's device list is
the one stand-in), so each step's conds are split over two model copies run at once by ComfyUI's thread pool. Plain
CFG, the two-model passes (a separate checkpoint, a weight hook), the batched extra passes of the attention and block
perturbations and NAG's negative rows equal the single-device run. The two copies run their forwards in two threads
at once over the same pass state: before that state's per-forward fields were kept per thread
(attention_patches/per_thread.py), PAG raised "reached none of its layers" on most runs and NAG differed."""
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
from measured_figures import default_inputs, node_class  # noqa: E402
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


def at_defaults(path: str):
    """model -> the node at its defaults applied to it."""
    node = node_class(path)
    return lambda m: node.execute(m, **default_inputs(node)).result[0]


CASES = {"cfg": lambda m: m, "pag": lambda m: PAG.execute(m, 3.0, "").result[0],
         "autoguidance_separate": lambda m: Autoguidance.execute(m, dv.load(FAMILY, 1, True), 2.0).result[0],
         "autoguidance_weight_hook": lambda m: Autoguidance.execute(with_lora(m), m, 2.0).result[0],
         "unconditional_prior_weight_hook": lambda m: UnconditionalPrior.execute(with_lora(m), m).result[0],
         "nag": nag, "seg": at_defaults("seg.SEG"), "slg": at_defaults("slg.SkipLayerGuidance"),
         "tpg": at_defaults("tpg.TPG"), "nag_on_pag": lambda m: nag(PAG.execute(m, 3.0, "").result[0])}


@pytest.mark.parametrize("run", range(3), ids=lambda r: f"run{r}")
@pytest.mark.parametrize("make", CASES.values(), ids=CASES.keys())
def test_split_over_two_devices_equals_one_device(make, run):
    single = tm.ksample(make(dv.load(FAMILY, disable_dynamic=True)), FAMILY, cfg=CFG)
    multi = comfy.multigpu.create_multigpu_deepclones(dv.load(FAMILY, disable_dynamic=True), len(DEVICES))
    counted, used = devices_used(make(multi))
    assert_close(tm.ksample(counted, FAMILY, cfg=CFG), single, rel=1e-5)
    assert used == {"cpu", "cpu:1"}
