"""A Guidance Schedule on the CFG-family nodes' own guidance (scale_schedule input, guiders/combine.py): a constant
schedule is no schedule, a schedule changes the output by D = D_c + f(t) (D_node - D_c), f = 0 is the cond prediction,
and an unconnected input keeps the node as it was."""
import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from tiny_models import assert_differs

from guidance_zoo.core.schedules import schedule_factor
from guidance_zoo.nodes.apg import APG
from guidance_zoo.nodes.cfg_zero_star import CFGZeroStar
from guidance_zoo.nodes.dynamic_thresholding import DynamicThresholding
from guidance_zoo.nodes.fdg import FDG
from guidance_zoo.nodes.rescale_cfg import RescaleCFG
from guidance_zoo.nodes.schedule import GuidanceSchedule
from guidance_zoo.nodes.tcfg import TCFG

CFG = 6.0
NODES = {
    "APG": (APG, dict(eta=0.0, norm_threshold=15.0, momentum=-0.5)),
    "FDG": (FDG, dict(high_scale=10.0, levels=2, parallel_weight_high=1.0, parallel_weight_low=1.0)),
    "TCFG": (TCFG, {}),
    "RescaleCFG": (RescaleCFG, dict(multiplier=0.7)),
    "CFGZeroStar": (CFGZeroStar, dict(zero_init_steps=1, mode="official")),
    "DynamicThresholding": (DynamicThresholding, dict(percentile=0.995, mimic_scale=2.0)),
}


def schedule(kind="constant", floor=0.0, sigma_low=0.0, sigma_high=1000.0):
    return GuidanceSchedule.execute(kind, floor, sigma_low, sigma_high).result[0]


def patch(model, name, scale_schedule=None):
    node, inputs = NODES[name]
    return node.execute(model, **inputs, scale_schedule=scale_schedule).result[0]


def spy_pre_cfg(model, record):
    def spy(args):
        cond, uncond = args["conds_out"][0], args["conds_out"][1]
        record.append(uncond + args["cond_scale"] * (cond - uncond))
        return args["conds_out"]
    clone = model.clone()
    clone.set_model_sampler_pre_cfg_function(spy)
    return clone


@pytest.mark.parametrize("family", ("sd15", "flux", "wan21"))
@pytest.mark.parametrize("name", list(NODES))
def test_constant_schedule_is_no_schedule_and_a_schedule_changes_the_output(name, family):
    model = tm.make_model(family)
    plain = tm.ksample(patch(model, name), family, cfg=CFG, steps=5)
    torch.testing.assert_close(tm.ksample(patch(model, name, schedule()), family, cfg=CFG, steps=5), plain,
                               rtol=0, atol=0)
    scheduled = tm.ksample(patch(model, name, schedule("cosine")), family, cfg=CFG, steps=5)
    assert torch.isfinite(scheduled).all()
    assert_differs(scheduled, plain)


@pytest.mark.parametrize("name", list(NODES))
def test_the_schedule_scales_the_nodes_guidance_by_its_factor(name):
    """First step of a 4-step run: the scheduled result is D_c + f (D_node - D_c), f = linear_decreasing at t = 0."""
    model = tm.make_model("flux")
    unscheduled, scheduled, cond_record = [], [], []
    tm.ksample(spy_pre_cfg(patch(model, name), unscheduled), "flux", cfg=CFG, steps=4)
    tm.ksample(spy_pre_cfg(patch(model, name, schedule("linear_decreasing")), scheduled), "flux", cfg=CFG, steps=4)
    tm.ksample(spy_pre_cfg(model, cond_record), "flux", cfg=1.0, steps=4)
    factor = schedule_factor("linear_decreasing", 0.0)
    assert factor == 2.0
    d_c = cond_record[0]  # at cfg 1 the combine is the cond prediction of the same first step
    torch.testing.assert_close(scheduled[0], d_c + factor * (unscheduled[0] - d_c), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name", ("APG", "FDG"))
def test_outside_the_schedules_interval_the_step_is_cond_only(name):
    model = tm.make_model("sd15")
    never = schedule(sigma_low=999.0, sigma_high=1000.0)
    torch.testing.assert_close(tm.ksample(patch(model, name, never), "sd15", cfg=CFG, steps=4),
                               tm.ksample(model, "sd15", cfg=1.0, steps=4), rtol=1e-4, atol=1e-4)


def test_a_scheduled_rule_keeps_the_batch_independent():
    model = patch(tm.make_model("wan21"), "APG", schedule("linear", sigma_low=0.2, sigma_high=0.9))
    both = tm.ksample(model, "wan21", cfg=CFG, seeds=(3, 4), steps=5)
    for i, seed in enumerate((3, 4)):
        torch.testing.assert_close(both[i:i + 1], tm.ksample(model, "wan21", cfg=CFG, seeds=(seed,), steps=5),
                                   rtol=1e-4, atol=1e-4)


def test_cfg_schedule_node_schedules_the_cfg_once():
    """The CFG Schedule node's own schedule is its rule, not a scale_schedule on it: each step combines with
    cfg_t = 1 + (cfg - 1) f(progress), f applied once (linear: 0, 2/3, 4/3, 2 over 4 steps)."""
    from guidance_zoo.core.schedules import scheduled_cfg
    from guidance_zoo.nodes.cfg_schedule import CFGSchedule

    def spy_pair(model, record):
        def spy(args):
            record.append((args["conds_out"][0].clone(), args["conds_out"][1].clone()))
            return args["conds_out"]
        clone = model.clone()
        clone.set_model_sampler_pre_cfg_function(spy)
        return clone

    raw, combined = [], []
    model = spy_pair(tm.make_model("sd15"), raw)
    scheduled = CFGSchedule.execute(model, "linear", 0.0, 0.0, 1000.0, False).result[0]
    tm.ksample(spy_pre_cfg(scheduled, combined), "sd15", cfg=CFG, steps=4)
    assert len(raw) == len(combined) == 4
    for i, ((cond, uncond), result) in enumerate(zip(raw, combined)):
        cfg_t = scheduled_cfg(CFG, schedule_factor("linear", i / 3))
        torch.testing.assert_close(result, uncond + cfg_t * (cond - uncond), rtol=1e-4, atol=1e-4)
