"""CFG++ samplers on real ComfyUI with tiny models: parity with ComfyUI's *_cfg_pp samplers, flow models, NFEs."""
import math

import pytest
import torch

import tiny_models as tm
import comfy.sample
import comfy.samplers

from guidance_zoo.core.cfgpp import ancestral_split, ddim_step
from guidance_zoo.guiders.cfgpp import CFGPPError
from guidance_zoo.nodes.cfgpp import CFGPPSampler
from guidance_zoo.nodes.common import NodeInputError


def ours(sampler="euler", eta=1.0, ddim_eta=0.0, s_noise=1.0):
    return CFGPPSampler.execute(sampler, eta, ddim_eta, s_noise).result[0]


def core(name, **options):
    return comfy.samplers.ksampler(name, options) if options else comfy.samplers.sampler_object(name)


def sample(model, family, sampler, cfg=0.6, steps=4, seeds=(0,), conds=None, skip_first=False):
    """What SamplerCustomAdvanced does with a CFGGuider; skip_first drops sigma_max (flow: sigma 1) from the
    schedule."""
    positive, negative = conds or tm.make_conds(family)
    guider = comfy.samplers.CFGGuider(model)
    guider.set_conds(positive, negative)
    guider.set_cfg(cfg)
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "simple", steps)
    sigmas = sigmas[1:] if skip_first else sigmas
    return guider.sample(tm.noise_for(family, list(seeds)), tm.latent(family, len(seeds)), sampler, sigmas,
                         disable_pbar=True, seed=seeds[0])


def max_diff(a, b):
    return float((a - b).abs().max())


def assert_close(a, b, rel=1e-5):
    torch.testing.assert_close(a, b, rtol=rel, atol=rel * float(b.abs().max()))


@pytest.mark.parametrize("family", ("sd15", "flux"))
def test_euler_equals_comfy_euler_cfg_pp(family):
    model = tm.make_model(family)
    assert_close(sample(model, family, ours("euler")), sample(model, family, core("euler_cfg_pp")))


@pytest.mark.parametrize("family,eta", [("sd15", 1.0), ("sd15", 0.5), ("sd3", 1.0)])
def test_euler_ancestral_equals_comfy_euler_ancestral_cfg_pp_same_seed(family, eta):
    model = tm.make_model(family)
    mine = sample(model, family, ours("euler_ancestral", eta=eta), seeds=(5,))
    assert_close(mine, sample(model, family, core("euler_ancestral_cfg_pp", eta=eta, s_noise=1.0), seeds=(5,)))
    assert max_diff(mine, sample(model, family, ours("euler_ancestral", eta=eta), seeds=(6,))) > 1e-3


def test_dpmpp_2m_equals_comfy_dpmpp_2m_cfg_pp_on_a_unet():
    model = tm.make_model("sd15")
    assert_close(sample(model, "sd15", ours("dpmpp_2m"), steps=5),
                 sample(model, "sd15", core("dpmpp_2m_cfg_pp"), steps=5))


def test_dpmpp_2m_is_flow_correct():
    """With D_c = D_u CFG++ is the plain solver: ours equals ComfyUI's flow-aware DPM++(2M) (2m_sde at eta 0);
    ComfyUI's dpmpp_2m_cfg_pp uses the VE step and log-sigma times on flow models and does not."""
    model, positive = tm.make_model("sd3"), tm.make_conds("sd3")[0]
    kw = dict(cfg=3.0, steps=5, conds=(positive, positive), skip_first=True)
    reference = sample(model, "sd3", core("dpmpp_2m_sde", eta=0.0), **kw)
    assert_close(sample(model, "sd3", ours("dpmpp_2m"), **kw), reference)
    assert max_diff(sample(model, "sd3", core("dpmpp_2m_cfg_pp"), **kw), reference) > 1e-2


def test_equal_conds_give_plain_euler_on_a_flow_model():
    model, positive = tm.make_model("flux"), tm.make_conds("flux")[0]
    kw = dict(cfg=3.0, conds=(positive, positive), seeds=(2,))
    assert_close(sample(model, "flux", ours("euler"), **kw), sample(model, "flux", core("euler"), **kw))


def test_ddim_eta_equals_euler_ancestral_eta_and_deterministic_ddim_is_euler():
    model = tm.make_model("sd15")
    assert_close(sample(model, "sd15", ours("ddim", ddim_eta=0.0)), sample(model, "sd15", ours("euler")), rel=1e-6)
    assert_close(sample(model, "sd15", ours("ddim", ddim_eta=0.3), seeds=(7,)),
                 sample(model, "sd15", ours("euler_ancestral", eta=0.3), seeds=(7,)), rel=1e-6)


@pytest.mark.parametrize("family", ("sd15", "flux", "wan21"))
def test_every_sampler_changes_the_output_versus_plain_euler(family):
    model = tm.make_model(family)
    plain = sample(model, family, core("euler"), cfg=0.8)
    for name, kwargs in (("euler", {}), ("euler_ancestral", {}), ("ddim", {"ddim_eta": 0.5}), ("dpmpp_2m", {})):
        out = sample(model, family, ours(name, **kwargs), cfg=0.8)
        assert out.shape == plain.shape and torch.isfinite(out).all()
        assert max_diff(out, plain) > 1e-3 * float(plain.abs().max()), name


@pytest.mark.parametrize("family", ("sd15", "sd3"))
def test_at_lambda_one_it_still_differs_from_euler_and_costs_two_evaluations_per_step(family):
    model = tm.make_model(family)
    counted, counter = tm.counted(model)
    out = sample(counted, family, ours("euler"), cfg=1.0, steps=3)
    assert counter.samples == 2 * 3
    assert max_diff(out, sample(model, family, core("euler"), cfg=1.0, steps=3)) > 1e-3 * float(out.abs().max())


def test_dpmpp_2m_costs_two_evaluations_per_step():
    counted, counter = tm.counted(tm.make_model("flux"))
    sample(counted, "flux", ours("dpmpp_2m"), cfg=0.6, steps=4)
    assert counter.samples == 2 * 4


@pytest.mark.parametrize("family", ("sd15", "sd3", "wan21"))
@pytest.mark.parametrize("sampler", ("euler", "dpmpp_2m"))
def test_batch_of_two_equals_two_single_runs(family, sampler):
    model = tm.make_model(family)
    both = sample(model, family, ours(sampler), seeds=(3, 4))
    for i, seed in enumerate((3, 4)):
        assert_close(both[i:i + 1], sample(model, family, ours(sampler), seeds=(seed,)), rel=1e-4)


@pytest.mark.parametrize("family", ("sd15", "flux", "wan21"))
def test_fp16_stays_finite(family):
    model = tm.make_model(family, dtype=torch.float16)
    for name in ("euler_ancestral", "dpmpp_2m"):
        assert torch.isfinite(sample(model, family, ours(name), cfg=1.0)).all()


def test_works_through_sample_custom_like_the_sampler_custom_node():
    model = tm.make_model("sd15")
    positive, negative = tm.make_conds("sd15")
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "simple", 3)
    noise = tm.noise_for("sd15", [0])
    run = [comfy.sample.sample_custom(model, noise, 0.6, sampler, sigmas, positive, negative, tm.latent("sd15"),
                                      disable_pbar=True, seed=0) for sampler in (ours("euler"), core("euler_cfg_pp"))]
    assert_close(run[0], run[1])


def test_without_a_negative_it_fails_loudly():
    model = tm.make_model("sd15")
    guider = comfy.samplers.CFGGuider(model)  # what BasicGuider does: positive only
    guider.inner_set_conds({"positive": tm.make_conds("sd15")[0]})
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "simple", 2)
    with pytest.raises(CFGPPError, match=r"CFG\+\+ \(Guidance Zoo\).*negative"):
        guider.sample(tm.noise_for("sd15", [0]), tm.latent("sd15"), ours("euler"), sigmas, disable_pbar=True, seed=0)


def test_core_step_is_the_official_euler_and_flow_sigma_one_has_no_nan():
    g = torch.Generator().manual_seed(0)
    x, guided, uncond = (torch.randn(2, 4, 3, 5, 5, generator=g) for _ in range(3))
    # official EulerCFGppSolver (VE form): x' = D_lambda + sigma' (x - D_u) / sigma
    torch.testing.assert_close(ddim_step(x, guided, uncond, 2.0, 1.5, 1.0, 1.0), guided + 1.5 * (x - uncond) / 2.0)
    # flow at sigma 1 (alpha 0): eps_u = x; eta < 1 keeps part of it instead of k-diffusion's inf/inf
    keep, fresh = ancestral_split(1.0, 0.8, 0.0, 0.2, 0.5)
    assert math.isclose(fresh, 0.4) and math.isclose(keep, math.sqrt(0.64 - 0.16))
    noise = torch.randn(x.shape, generator=g)
    out = ddim_step(x, guided, uncond, 1.0, 0.8, 0.0, 0.2, 0.5, 1.0, noise)
    torch.testing.assert_close(out, 0.2 * guided + keep * x + fresh * noise)
    assert ddim_step(x.half(), guided.half(), uncond.half(), 1.0, 0.8, 0.0, 0.2).dtype == torch.float16


@pytest.mark.parametrize("kwargs,name", [({"eta": float("nan")}, "eta"), ({"s_noise": -1.0}, "s_noise"),
                                         ({"ddim_eta": 2.0}, "ddim_eta"), ({"sampler": "heun"}, "sampler")])
def test_rejects_bad_input_naming_the_node(kwargs, name):
    args = {"sampler": "euler", "eta": 1.0, "ddim_eta": 0.0, "s_noise": 1.0, **kwargs}
    with pytest.raises(NodeInputError, match=rf"CFG\+\+ \(Guidance Zoo\): '{name}'"):
        CFGPPSampler.execute(**args)
