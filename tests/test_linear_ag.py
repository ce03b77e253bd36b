"""LinearAG on real ComfyUI with tiny models: least-squares kernel, effect, model-call counts, plain CFG when every
step is warm-up, online fit vs cond-only, batch, fp16, repeatability, 4-D and 5-D, bad input."""
import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from tiny_models import assert_close, assert_differs

from guidance_zoo.core.linear_ag import linear_estimate, normal_equations, solve_coefficients
from guidance_zoo.guiders.linear_ag import LinearAG
from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.linear_ag import LinearAdaptiveGuidance

CFG = 6.0


def patch(model, warmup_steps=2, coefficients=""):
    return LinearAdaptiveGuidance.execute(model, warmup_steps, coefficients).result[0]


def test_kernel_recovers_per_sample_coefficients_on_5d():
    g = torch.Generator().manual_seed(0)
    regressors = list(torch.randn(3, 2, 4, 2, 6, 6, generator=g).unbind(0))
    beta = torch.tensor([[0.9, 0.3, -0.2], [1.1, -0.4, 0.25]])
    target = linear_estimate(regressors, beta)
    torch.testing.assert_close(solve_coefficients(*normal_equations(regressors, target)).float(), beta,
                               rtol=1e-4, atol=1e-4)
    assert_close(linear_estimate(regressors, beta[0])[1:], linear_estimate([r[1:] for r in regressors],
                                                                           beta[0:1]), rel=1e-6)


@pytest.mark.parametrize("family", ("sd15", "flux", "wan21"))
def test_linear_ag_changes_the_output_and_all_warmup_is_plain_cfg(family):
    model = tm.make_model(family)
    plain = tm.ksample(model, family, cfg=CFG, steps=6)
    out = tm.ksample(patch(model), family, cfg=CFG, steps=6)
    assert torch.isfinite(out).all()
    assert_differs(out, plain)
    torch.testing.assert_close(tm.ksample(patch(model, warmup_steps=6), family, cfg=CFG, steps=6), plain,
                               rtol=0, atol=0)


def test_linear_ag_runs_one_evaluation_per_step_after_the_warmup_and_beats_cond_only():
    model = tm.make_model("sd15")
    plain_model, plain_counter = tm.counted(model)
    plain = tm.ksample(plain_model, "sd15", cfg=CFG, steps=10)
    counted, counter = tm.counted(patch(model, warmup_steps=3))
    fitted = tm.ksample(counted, "sd15", cfg=CFG, steps=10)
    assert plain_counter.samples == 20 and counter.samples == 2 * 3 + 7 and counter.calls == 10
    print(f"LinearAG: {counter.samples} vs CFG {plain_counter.samples} evaluations in 10 steps")
    cond_only = tm.ksample(patch(model, warmup_steps=3, coefficients="1, 0, 0"), "sd15", cfg=CFG, steps=10)
    assert float((fitted - plain).norm()) < float((cond_only - plain).norm())
    table = tm.ksample(patch(model, warmup_steps=3, coefficients="1 0 0; 0.5, 0.5, 0"), "sd15", cfg=CFG, steps=10)
    assert float((table - cond_only).abs().max()) > 1e-4


@pytest.mark.parametrize("family", ("flux", "wan21"))
def test_linear_ag_batch_of_two_equals_two_single_runs(family):
    model = patch(tm.make_model(family))
    tm.assert_batch_equals_single_runs(model, family, seeds=(3, 4), cfg=CFG, steps=4)


def test_linear_ag_is_finite_in_fp16_and_repeats_exactly():
    model = patch(tm.make_model("sd15", dtype=torch.float16))
    first = tm.ksample(model, "sd15", cfg=12.0, steps=5)
    assert torch.isfinite(first).all()
    torch.testing.assert_close(tm.ksample(model, "sd15", cfg=12.0, steps=5), first, rtol=0, atol=0)


@pytest.mark.parametrize("bad", [dict(warmup_steps=1), dict(warmup_steps=1, coefficients="1,0,0"),
                                 dict(coefficients="1e30, 0, 0"), dict(coefficients="1, -11, 0"),
                                 dict(coefficients="1, 2"), dict(coefficients="a b c"),
                                 dict(coefficients="1, nan, 0")])
def test_linear_ag_rejects_bad_input_naming_the_node(bad):
    with pytest.raises(NodeInputError, match="LinearAG"):
        patch(tm.make_model("sd15"), **bad)


def test_linear_ag_widget_minimum_is_accepted_at_run_time():
    warmup = next(i for i in LinearAdaptiveGuidance.define_schema().inputs if i.id == "warmup_steps")
    assert torch.isfinite(tm.ksample(patch(tm.make_model("sd15"), warmup_steps=warmup.min), "sd15", cfg=CFG,
                                     steps=4)).all()


def test_linear_ag_stops_a_run_whose_estimate_is_not_finite():
    model = tm.make_model("sd15").clone()
    LinearAG(2, [(1e38, 1e38, 1e38)]).install(model)
    with pytest.raises(RuntimeError, match=r"LinearAG \(Guidance Zoo\): the uncond estimate .* is not finite"):
        tm.ksample(model, "sd15", cfg=CFG, steps=4)
