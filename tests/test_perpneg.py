"""Perp-Neg guider and model patch on real ComfyUI with tiny models: core parity at batch 1, per-sample batches,
NFEs, guards."""
import pytest
import torch

import tiny_models as tm
import comfy.samplers
from comfy_extras.nodes_perpneg import PerpNegGuider as CorePerpNeg

from guidance_zoo.core.perpneg import perpendicular, perpneg_denoised
from guidance_zoo.core.reduce import per_sample_dot
from guidance_zoo.nodes.cfgpp import CFGPPSampler
from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.perpneg import PerpNegGuiderNode, PerpNegModelPatch


def conds(family):
    positive, negative = tm.make_conds(family)
    empty = tm.make_conds(family, seed=7)[0]
    return positive, negative, empty


def ours(model, family, cfg=6.0, neg_scale=1.0, three=None):
    return PerpNegGuiderNode.execute(model, *(three or conds(family)), cfg, neg_scale).result[0]


def run(guider, model, family, seeds=(0,), steps=3, sampler=None):
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "simple", steps)
    return guider.sample(tm.noise_for(family, list(seeds)), tm.latent(family, len(seeds)),
                         sampler or comfy.samplers.sampler_object("euler"), sigmas, disable_pbar=True, seed=seeds[0])


def assert_close(a, b, rel=1e-5):
    torch.testing.assert_close(a, b, rtol=rel, atol=rel * float(b.abs().max()))


@pytest.mark.parametrize("family", ("sd15", "flux", "wan21"))
def test_equals_comfy_perpneg_guider_at_batch_one(family):
    model = tm.make_model(family)
    core = run(CorePerpNeg.execute(model, *conds(family), 6.0, 1.0).result[0], model, family)
    assert_close(run(ours(model, family), model, family), core)


@pytest.mark.parametrize("family", ("sd15", "sd3", "wan21"))
def test_batch_of_two_equals_two_single_runs_where_core_does_not(family):
    model = tm.make_model(family)
    both = run(ours(model, family), model, family, seeds=(3, 4))
    core_both = run(CorePerpNeg.execute(model, *conds(family), 6.0, 1.0).result[0], model, family, seeds=(3, 4))
    core_error = 0.0
    for i, seed in enumerate((3, 4)):
        alone = run(ours(model, family), model, family, seeds=(seed,))
        assert_close(both[i:i + 1], alone, rel=1e-4)
        core_error = max(core_error, float((core_both[i:i + 1] - alone).abs().max()) / float(alone.abs().max()))
    assert core_error > 1e-3  # core's whole-batch sum mixes the two samples


def test_costs_three_evaluations_per_step_in_one_call():
    model = tm.make_model("sd3")
    counted, counter = tm.counted(model)
    run(ours(counted, "sd3"), counted, "sd3", steps=4)
    assert counter.samples == 3 * 4 and counter.calls == 4


def test_neg_scale_zero_is_cfg_against_the_empty_prompt_with_two_evaluations():
    model = tm.make_model("sd15")
    positive, _, empty = three = conds("sd15")
    counted, counter = tm.counted(model)
    out = run(ours(counted, "sd15", neg_scale=0.0, three=three), counted, "sd15")
    assert counter.samples == 2 * 3
    cfg = comfy.samplers.CFGGuider(model)
    cfg.set_conds(positive, empty)
    cfg.set_cfg(6.0)
    assert_close(out, run(cfg, model, "sd15"))


def test_negative_changes_the_output_and_stays_finite_in_fp16():
    model = tm.make_model("flux", dtype=torch.float16)
    with_neg = run(ours(model, "flux"), model, "flux")
    assert torch.isfinite(with_neg).all()
    without = run(ours(model, "flux", neg_scale=0.0), model, "flux")
    assert float((with_neg - without).abs().max()) > 1e-3 * float(without.abs().max())


def test_positive_equal_to_empty_stays_finite_where_core_gives_nan():
    model = tm.make_model("sd15")
    positive, negative, _ = conds("sd15")
    three = (positive, negative, positive)
    assert torch.isfinite(run(ours(model, "sd15", three=three), model, "sd15")).all()
    assert not torch.isfinite(run(CorePerpNeg.execute(model, *three, 6.0, 1.0).result[0], model, "sd15")).all()


def test_cfgpp_sampler_renoises_with_the_empty_prompt():
    """At neg_scale 0 Perp-Neg is CFG against the empty prompt, so with CFG++ it must equal CFG++ on CFGGuider."""
    model = tm.make_model("sd15")
    positive, _, empty = three = conds("sd15")
    sampler = CFGPPSampler.execute("euler", 1.0, 0.0, 1.0).result[0]
    cfg = comfy.samplers.CFGGuider(model)
    cfg.set_conds(positive, empty)
    cfg.set_cfg(0.7)
    assert_close(run(ours(model, "sd15", cfg=0.7, neg_scale=0.0, three=three), model, "sd15", sampler=sampler),
                 run(cfg, model, "sd15", sampler=sampler))


def test_kernel_is_per_sample_and_orthogonal_on_5d_latents():
    g = torch.Generator().manual_seed(0)
    pos, neg, empty = (torch.randn(2, 4, 3, 5, 5, generator=g) for _ in range(3))
    perp = perpendicular(neg, pos)
    assert float(per_sample_dot(perp, pos).abs().max()) < 1e-4
    torch.testing.assert_close(perp[1:], perpendicular(neg[1:], pos[1:]))
    torch.testing.assert_close(perpendicular(neg, torch.zeros_like(pos)), neg)
    d = perpneg_denoised(pos + empty, neg + empty, empty, 5.0, 0.5)
    torch.testing.assert_close(d, empty + 5.0 * (pos - 0.5 * perp), rtol=1e-5, atol=1e-5)
    assert perpneg_denoised(pos.half(), neg.half(), empty.half(), 5.0, 1.0).dtype == torch.float16


@pytest.mark.parametrize("name,value", [("negative", None), ("empty_conditioning", []), ("cfg", float("nan")),
                                        ("neg_scale", -1.0)])
def test_rejects_missing_conds_and_bad_numbers_naming_the_node(name, value):
    positive, negative, empty = conds("sd15")
    args = {"model": tm.make_model("sd15"), "positive": positive, "negative": negative, "empty_conditioning": empty,
            "cfg": 6.0, "neg_scale": 1.0, name: value}
    with pytest.raises(NodeInputError, match=rf"Perp-Neg Guider \(Guidance Zoo\): '{name}'"):
        PerpNegGuiderNode.execute(**args)


def patched(model, empty, neg_scale=1.0):
    return PerpNegModelPatch.execute(model, empty, neg_scale).result[0]


@pytest.mark.parametrize("family", ("sd15", "wan21"))
def test_model_patch_on_the_stock_sampler_equals_the_guider(family):
    model = tm.make_model(family)
    positive, negative, empty = conds(family)
    for seeds in ((0,), (3, 4)):
        via_patch = tm.guider_sample(patched(model, empty), family, cfg=6.0, seeds=seeds, conds=(positive, negative))
        assert_close(via_patch, run(ours(model, family), model, family, seeds=seeds), rel=1e-4)


def test_model_patch_costs_three_evaluations_per_step_also_at_cfg_one():
    counted, counter = tm.counted(patched(tm.make_model("sd15"), conds("sd15")[2]))
    out = tm.ksample(counted, "sd15", cfg=1.0, steps=3)
    assert counter.samples == 3 * 3 and torch.isfinite(out).all()


def test_model_patch_without_a_negative_or_empty_prompt_fails_loudly():
    model = tm.make_model("sd15")
    with pytest.raises(NodeInputError, match=r"Perp-Neg \(Guidance Zoo\): 'empty_conditioning'"):
        PerpNegModelPatch.execute(model, [], 1.0)
    guider = comfy.samplers.CFGGuider(patched(model, conds("sd15")[2]))
    guider.inner_set_conds({"positive": conds("sd15")[0]})
    guider.set_cfg(6.0)
    with pytest.raises(RuntimeError, match=r"Perp-Neg \(Guidance Zoo\).*negative"):
        run(guider, model, "sd15")
