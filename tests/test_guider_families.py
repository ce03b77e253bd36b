"""The methods that change how the sampler guides rather than the model (Perp-Neg's patch, StreamDiffusion RCFG, the
CFG++ sampler) on every family: their support-matrix cells. Each changes the output there and its mechanism holds:
Perp-Neg costs three evaluations a step and is plain CFG when the empty prompt is the negative, RCFG's self mode costs
one evaluation a step and is plain sampling at cfg 1, CFG++'s euler equals ComfyUI's euler_cfg_pp. Their formulas,
batch, fp16 and bad input are tested on a few families in test_perpneg.py, test_rcfg.py and test_cfgpp.py."""
import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from support_matrix import cases
from test_cfgpp import sample
from tiny_models import assert_close, assert_differs
import comfy.samplers

from guidance_zoo.nodes import cfgpp, perpneg, rcfg
from guidance_zoo.nodes.cfgpp import CFGPPSampler
from guidance_zoo.nodes.perpneg import PerpNegModelPatch
from guidance_zoo.nodes.rcfg import ResidualCFG

STEPS = 3


@pytest.mark.parametrize("family", cases(perpneg.METHOD_INFO.name, tm.FAMILIES))
def test_perpneg_patch_changes_the_output_at_three_evaluations_and_is_cfg_when_empty_is_the_negative(family):
    model = tm.make_model(family)
    positive, negative = tm.make_conds(family)
    empty = tm.make_conds(family, seed=7)[0]
    counted, counter = tm.counted(PerpNegModelPatch.execute(model, empty, 1.0).result[0])
    out = tm.ksample(counted, family, steps=STEPS, cfg=6.0)
    assert counter.samples == 3 * STEPS and torch.isfinite(out).all()
    assert_differs(out, tm.ksample(model, family, steps=STEPS, cfg=6.0))
    as_cfg = PerpNegModelPatch.execute(model, negative, 1.0).result[0]
    assert_close(tm.ksample(as_cfg, family, steps=STEPS, cfg=6.0), tm.ksample(model, family, steps=STEPS, cfg=6.0))


@pytest.mark.parametrize("family", cases(rcfg.METHOD_INFO.name, tm.FAMILIES))
def test_rcfg_changes_the_output_at_one_evaluation_per_step_and_is_plain_at_cfg_one(family):
    model = tm.make_model(family)
    counted, counter = tm.counted(ResidualCFG.execute(model, "self", 1.0).result[0])
    out = tm.ksample(counted, family, steps=STEPS, cfg=1.5)
    assert counter.samples == STEPS and torch.isfinite(out).all()
    assert_differs(out, tm.ksample(model, family, steps=STEPS, cfg=1.5))
    assert_close(tm.ksample(counted, family, steps=STEPS, cfg=1.0), tm.ksample(model, family, steps=STEPS, cfg=1.0))


@pytest.mark.parametrize("family", cases(cfgpp.METHOD_INFO.name, tm.FAMILIES))
def test_cfgpp_euler_equals_comfy_euler_cfg_pp_and_differs_from_euler(family):
    model = tm.make_model(family)
    ours = sample(model, family, CFGPPSampler.execute("euler", 1.0, 0.0, 1.0).result[0], steps=STEPS)
    assert torch.isfinite(ours).all()
    assert_close(ours, sample(model, family, comfy.samplers.sampler_object("euler_cfg_pp"), steps=STEPS), rel=1e-5)
    assert_differs(ours, sample(model, family, comfy.samplers.sampler_object("euler"), steps=STEPS))
