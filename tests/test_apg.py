"""APG on real ComfyUI with tiny models of every family: no-op, reductions, core parity, batch, fp16, stacking."""
import pytest
import torch

import tiny_models as tm
from tiny_models import assert_close, assert_differs, max_diff
from support_matrix import cases
from comfy_extras.nodes_apg import APG as CoreAPG
from comfy_extras.nodes_tcfg import TCFG as CoreTCFG

from guidance_zoo.nodes.apg import APG
from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.pag import PAG

SAMPLE = {"ksampler": tm.ksample, "guider": tm.guider_sample}
REPRESENTATIVE = ("sd15", "flux", "wan21")


def apg(model, eta=0.0, threshold=15.0, momentum=-0.5):
    return APG.execute(model, eta, threshold, momentum).result[0]


@pytest.mark.parametrize("family", cases("APG", tm.FAMILIES))
def test_apg_changes_the_output_on_every_family(family):
    model = tm.make_model(family)
    plain = tm.ksample(model, family, cfg=6.0)
    guided = tm.ksample(apg(model, threshold=1.0), family, cfg=6.0)
    assert torch.isfinite(guided).all()
    assert_differs(guided, plain)


@pytest.mark.parametrize("path", list(SAMPLE))
@pytest.mark.parametrize("family", REPRESENTATIVE)
def test_apg_neutral_setting_equals_plain_cfg(family, path):
    model = tm.make_model(family)
    plain = SAMPLE[path](model, family, cfg=5.0)
    neutral = SAMPLE[path](apg(model, eta=1.0, threshold=0.0, momentum=0.0), family, cfg=5.0)
    assert_close(neutral, plain)


@pytest.mark.parametrize("path", list(SAMPLE))
@pytest.mark.parametrize("family", ("sd15", "sdxl", "flux", "sd3"))
@pytest.mark.parametrize("eta,threshold,momentum", [(0.0, 5.0, -0.5), (0.5, 2.0, 0.3), (1.0, 0.0, 0.0)])
def test_apg_equals_core_apg_at_cfg_plus_one(family, path, eta, threshold, momentum):
    """Core APG returns D_c + w G' (one unit more than the paper), so ours at cfg w + 1 must equal core's at w."""
    model = tm.make_model(family)
    core = SAMPLE[path](CoreAPG.execute(model, eta, threshold, momentum).result[0], family, cfg=4.0, steps=4)
    ours = SAMPLE[path](apg(model, eta, threshold, momentum), family, cfg=5.0, steps=4)
    assert_close(ours, core)


@pytest.mark.parametrize("family", REPRESENTATIVE + ("qwen_image",))
def test_apg_batch_of_two_equals_two_single_runs(family):
    model = apg(tm.make_model(family), threshold=2.0)
    both = tm.ksample(model, family, cfg=6.0, seeds=(3, 4))
    for i, seed in enumerate((3, 4)):
        alone = tm.ksample(model, family, cfg=6.0, seeds=(seed,))
        assert_close(both[i:i + 1], alone)


@pytest.mark.parametrize("family", REPRESENTATIVE)
def test_apg_momentum_state_resets_between_runs(family):
    model = apg(tm.make_model(family), momentum=-0.5, threshold=2.0)
    first = tm.ksample(model, family, cfg=6.0, steps=4)
    second = tm.ksample(model, family, cfg=6.0, steps=4)
    torch.testing.assert_close(first, second, rtol=0, atol=0)


def test_apg_momentum_matters():
    model = tm.make_model("sd15")
    with_momentum = tm.ksample(apg(model, momentum=-0.5, threshold=0.0), "sd15", cfg=6.0, steps=4)
    without = tm.ksample(apg(model, momentum=0.0, threshold=0.0), "sd15", cfg=6.0, steps=4)
    assert max_diff(with_momentum, without) > 1e-3


@pytest.mark.parametrize("family", ("sd15", "flux", "wan21"))
def test_apg_fp16_stays_finite(family):
    model = apg(tm.make_model(family, dtype=torch.float16), threshold=2.0)
    out = tm.ksample(model, family, cfg=12.0)
    assert torch.isfinite(out).all()


def test_apg_at_cfg_one_is_a_no_op_and_keeps_one_evaluation_per_step():
    model = tm.make_model("sd15")
    counted, counter = tm.counted(apg(model))
    out = tm.ksample(counted, "sd15", cfg=1.0, steps=3)
    torch.testing.assert_close(out, tm.ksample(model, "sd15", cfg=1.0, steps=3))
    assert counter.samples == 3


def test_apg_costs_two_evaluations_per_step():
    counted, counter = tm.counted(apg(tm.make_model("flux")))
    tm.ksample(counted, "flux", cfg=5.0, steps=3)
    assert counter.samples == 2 * 3


@pytest.mark.parametrize("family", ("sd15", "flux", "wan21"))
def test_apg_stacks_with_pag_and_core_tcfg_from_a_plain_ksampler(family):
    model = tm.make_model(family)
    stacked = PAG.execute(apg(CoreTCFG.execute(model).result[0], threshold=2.0), 2.0, "").result[0]
    out = tm.ksample(stacked, family, cfg=6.0)
    assert torch.isfinite(out).all()
    for partial in (apg(model, threshold=2.0), PAG.execute(model, 2.0, "").result[0],
                    CoreTCFG.execute(model).result[0]):
        assert max_diff(out, tm.ksample(partial, family, cfg=6.0)) > 1e-4
    pre = stacked.model_options["sampler_pre_cfg_function"]
    assert len(pre) == 2 and "sampler_cfg_function" not in stacked.model_options


def test_apg_chains_after_a_foreign_pre_cfg_function():
    model = tm.make_model("sd15")
    seen = []

    def foreign(args):
        seen.append(1)
        return args["conds_out"]
    foreign_model = model.clone()
    foreign_model.set_model_sampler_pre_cfg_function(foreign)
    out = tm.ksample(apg(foreign_model), "sd15", cfg=6.0)
    torch.testing.assert_close(out, tm.ksample(apg(model), "sd15", cfg=6.0))
    assert len(seen) == 3


@pytest.mark.parametrize("name,value", [("eta", float("nan")), ("norm_threshold", -1.0), ("momentum", 2.0),
                                        ("momentum", float("inf"))])
def test_apg_rejects_bad_input_naming_the_node(name, value):
    kwargs = {"eta": 0.0, "norm_threshold": 15.0, "momentum": -0.5, name: value}
    with pytest.raises(NodeInputError, match=rf"APG \(Guidance Zoo\): '{name}'"):
        APG.execute(tm.make_model("sd15"), **kwargs)
