"""What every block-level perturbation node (Skip-Layer Guidance, TPG, S2-Guidance) must do on real ComfyUI with tiny
models: its theoretical cost in one batched call, scale 0 = plain CFG for free, batch 2 = two batch-1 runs (5-D
video included), finite in fp16, and one batched call when stacked with PAG."""
import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from perturbation_checks import assert_close

from guidance_zoo.nodes.pag import PAG
from guidance_zoo.nodes.s2 import S2Guidance
from guidance_zoo.nodes.slg import SkipLayerGuidance
from guidance_zoo.nodes.tpg import TPG

METHODS = {
    "SLG": lambda model, scale=3.0: SkipLayerGuidance.execute(model, scale, "", 0.0, 1.0, 0.0).result[0],
    "TPG": lambda model, scale=3.0: TPG.execute(model, scale, "", 0).result[0],
    "S2": lambda model, scale=1.0: S2Guidance.execute(model, scale, 0.1, "", 0).result[0],
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("family", ("sd15", "flux", "lumina2", "wan21"))
@pytest.mark.parametrize("cfg,per_step", [(4.0, 3), (1.0, 2)])
def test_three_evaluations_per_step_with_cfg_and_two_without_in_one_batched_call(method, family, cfg, per_step):
    counted, counter = tm.counted(METHODS[method](tm.make_model(family)))
    tm.ksample(counted, family, cfg=cfg, steps=3)
    assert counter.calls == 3 and counter.samples == per_step * 3


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("family", ("sdxl", "sd3"))
def test_scale_zero_is_plain_cfg_at_no_cost(method, family):
    model = tm.make_model(family)
    counted, counter = tm.counted(METHODS[method](model, 0.0))
    assert_close(tm.ksample(counted, family, cfg=4.0), tm.ksample(model, family, cfg=4.0))
    assert counter.samples == 2 * 3


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("family", ("sd15", "sdxl", "flux", "chroma", "qwen_image", "lumina2", "wan21"))
def test_batch_of_two_equals_two_single_runs(method, family):
    model = METHODS[method](tm.make_model(family))
    tm.assert_batch_equals_single_runs(model, family, seeds=(5, 6), cfg=4.0)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("family", ("sdxl", "flux", "sd3", "lumina2", "wan21"))
def test_fp16_stays_finite(method, family):
    model = tm.make_model(family, dtype=torch.float16)
    assert torch.isfinite(tm.ksample(METHODS[method](model), family, cfg=4.0)).all()


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("family", ("sdxl", "flux", "lumina2", "wan21"))
def test_stacks_with_pag_in_one_call(method, family):
    stacked = PAG.execute(METHODS[method](tm.make_model(family)), 2.0, "").result[0]
    counted, counter = tm.counted(stacked)
    assert torch.isfinite(tm.ksample(counted, family, cfg=4.0)).all()
    assert counter.calls == 3 and counter.samples == 4 * 3
