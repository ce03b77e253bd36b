"""StreamDiffusion residual CFG (arXiv 2312.12491) on real ComfyUI with tiny models: the closed form against the
stream pipeline's own stock-noise recursion, the uncond each step really gets, model-call counts, effect, batch,
fp16, repeatability, 4-D and 5-D, bad input."""
import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from tiny_models import assert_differs
import comfy.sample

from guidance_zoo.core.rcfg import residual_uncond
from guidance_zoo.guiders import rcfg as rcfg_guider
from guidance_zoo.guiders.rcfg import RCFG
from guidance_zoo.nodes.common import NodeInputError, patched
from guidance_zoo.nodes.rcfg import DELTA, ResidualCFG

CFG = 1.5


def patch(model, mode="self", delta=1.0):
    return ResidualCFG.execute(model, mode, delta).result[0]


def spy_pre_cfg(model, record):
    """Records, after RCFG has run, what ComfyUI's CFG combines at each step: (x, sigma, D_c, D_u)."""
    def spy(args):
        record.append((args["input"].clone(), args["sigma"].clone(), args["conds_out"][0].clone(),
                       args["conds_out"][1].clone()))
        return args["conds_out"]
    clone = model.clone()
    clone.set_model_sampler_pre_cfg_function(spy)
    return clone


def img2img(model, family, latent, steps=4, cfg=CFG, denoise=0.6, seeds=(0,)):
    positive, negative = tm.make_conds(family)
    return comfy.sample.sample(model, tm.noise_for(family, list(seeds)), steps, cfg, "euler", "normal", positive,
                               negative, latent, denoise=denoise, disable_pbar=True, seed=seeds[0])


@pytest.mark.parametrize("mode", ("self", "initialize"))
def test_closed_form_equals_the_stream_pipelines_stock_noise_recursion(mode):
    """StreamDiffusion's unet_step (denoising batch, LCM scalings) on fixed tensors, in its own VP frame: the stock
    noise it carries equals (x - R) / sigma in ComfyUI's frame x / sqrt(alpha_bar) = x0 + sigma eps."""
    g = torch.Generator().manual_seed(0)
    alpha_bar = torch.tensor([0.3, 0.6, 0.85])
    a, b = alpha_bar.sqrt(), (1 - alpha_bar).sqrt()
    scaled = torch.tensor([999.0, 659.0, 259.0]) * 10.0                      # LCM timestep_scaling 10
    c_skip = 0.25 / (scaled ** 2 + 0.25)
    c_out = scaled / (scaled ** 2 + 0.25) ** 0.5
    image, init = torch.randn(4, 8, 8, generator=g), torch.randn(3, 4, 8, 8, generator=g)
    w, delta = 1.5, 0.8

    def eps_model(x, k, uncond=False):
        return torch.tanh(0.7 * x + k + (5.0 if uncond else 0.0))

    x = a[0] * image + b[0] * init[0]
    stock, reference = init[0].clone(), image
    for k in range(3):
        if mode == "initialize" and k == 0:
            stock = eps_model(x, k, uncond=True)
            reference = x / a[0] - (b[0] / a[0]) * stock                      # the real uncond's denoised prediction
        sigma, x_comfy = b[k] / a[k], x / a[k]
        ours = (x_comfy - residual_uncond(x_comfy, reference, delta)) / sigma
        torch.testing.assert_close(ours, delta * stock, rtol=1e-4, atol=1e-4)
        eps = delta * stock + w * (eps_model(x, k) - delta * stock)
        x0 = c_out[k] * (x - b[k] * eps) / a[k] + c_skip[k] * x
        if k < 2:
            delta_x = c_out[k] * (b[k] * stock - b[k] * eps) / a[k] + c_skip[k] * b[k] * stock
            stock = init[k + 1] + a[k + 1] * delta_x / b[k + 1]
            x = a[k + 1] * x0 + b[k + 1] * init[k + 1]


@pytest.mark.parametrize("family", ("sd15", "flux", "wan21"))
def test_self_mode_uncond_is_the_residual_to_the_input_latent_at_one_evaluation_per_step(family):
    model = tm.make_model(family)
    latent = torch.randn((1,) + tm.FAMILIES[family][2], generator=torch.Generator().manual_seed(3))
    record = []
    counted, counter = tm.counted(spy_pre_cfg(patch(model, delta=0.7), record))
    out = img2img(counted, family, latent)
    assert torch.isfinite(out).all() and counter.samples == counter.calls == len(record) == 4
    reference = model.model.process_latent_in(latent)
    for x, _sigma, _cond, uncond in record:
        torch.testing.assert_close(uncond, residual_uncond(x, reference, 0.7), rtol=1e-5, atol=1e-5)
    plain = img2img(model, family, latent)
    assert_differs(out, plain)


@pytest.mark.parametrize("family", ("sd15", "flux", "wan21"))
def test_initialize_runs_the_real_uncond_once_then_one_evaluation_per_step(family):
    model = tm.make_model(family)
    record, plain_record = [], []
    counted, counter = tm.counted(spy_pre_cfg(patch(model, mode="initialize", delta=0.9), record))
    tm.ksample(counted, family, cfg=CFG, steps=6)
    assert counter.samples == 2 + 5 and counter.calls == 6
    print(f"RCFG initialize: {counter.samples} evaluations in 6 steps (CFG: 12)")
    tm.ksample(spy_pre_cfg(model, plain_record), family, cfg=CFG, steps=6)
    first_uncond = plain_record[0][3]
    torch.testing.assert_close(record[0][3], first_uncond)
    for x, _sigma, _cond, uncond in record[1:]:
        torch.testing.assert_close(uncond, residual_uncond(x, first_uncond, 0.9), rtol=1e-5, atol=1e-5)


def test_self_mode_costs_one_evaluation_per_step_and_nothing_changes_at_cfg_one():
    model = tm.make_model("sd15")
    counted, counter = tm.counted(patch(model))
    tm.ksample(counted, "sd15", cfg=CFG, steps=6)
    assert counter.samples == counter.calls == 6
    print(f"RCFG self: {counter.samples} evaluations in 6 steps (CFG: 12)")
    torch.testing.assert_close(tm.ksample(patch(model), "sd15", cfg=1.0), tm.ksample(model, "sd15", cfg=1.0),
                               rtol=0, atol=0)


@pytest.mark.parametrize("mode", ("self", "initialize"))
@pytest.mark.parametrize("family", ("flux", "wan21"))
def test_batch_of_two_equals_two_single_runs(family, mode):
    model = patch(tm.make_model(family), mode=mode, delta=0.8)
    both = tm.ksample(model, family, cfg=CFG, seeds=(3, 4), steps=4)
    for i, seed in enumerate((3, 4)):
        torch.testing.assert_close(both[i:i + 1], tm.ksample(model, family, cfg=CFG, seeds=(seed,), steps=4),
                                   rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("mode", ("self", "initialize"))
def test_finite_in_fp16_and_repeats_exactly(mode):
    model = patch(tm.make_model("sd15", dtype=torch.float16), mode=mode)
    first = tm.ksample(model, "sd15", cfg=3.0, steps=4)
    assert torch.isfinite(first).all()
    torch.testing.assert_close(tm.ksample(model, "sd15", cfg=3.0, steps=4), first, rtol=0, atol=0)


@pytest.mark.parametrize("inputs,message", [(("self", float("nan")), "delta"), (("self", -1.0), "delta"),
                                            (("full", 1.0), "mode")])
def test_bad_input_gives_a_clear_error_naming_the_node(inputs, message):
    with pytest.raises(NodeInputError, match=f"RCFG.*{message}"):
        patch(tm.make_model("sd15"), *inputs)


@pytest.mark.parametrize("family", ("sd15", "flux", "wan21"))
def test_delta_stops_at_1_where_a_few_step_run_stays_bounded(family, monkeypatch):
    assert DELTA.high == 1.0
    with pytest.raises(NodeInputError, match=r"RCFG \(Guidance Zoo\): 'delta'"):
        patch(tm.make_model(family), delta=1.01)
    model = tm.make_model(family)
    plain = float(tm.ksample(model, family, cfg=CFG, steps=4).abs().max())
    at_max = tm.ksample(patch(model, delta=DELTA.high), family, cfg=CFG, steps=4)
    monkeypatch.setattr(rcfg_guider, "RUNAWAY", float("inf"))  # what the widget's bound prevents, unguarded
    beyond = tm.ksample(patched(model, RCFG("self", 10.0)), family, cfg=CFG, steps=4)
    print(f"{family}: |max| CFG {plain:.3g}, RCFG delta 1 {float(at_max.abs().max()):.3g}, "
          f"delta 10 (the old maximum) {float(beyond.abs().max()):.3g}")
    assert torch.isfinite(at_max).all() and float(at_max.abs().max()) < 6 * plain
    assert float(beyond.abs().max()) > 20 * plain


def test_rcfg_stacks_with_apg_and_keeps_one_evaluation_per_step():
    from guidance_zoo.nodes.apg import APG
    model = tm.make_model("flux")
    counted, counter = tm.counted(APG.execute(patch(model), 0.0, 15.0, -0.5).result[0])
    out = tm.ksample(counted, "flux", cfg=CFG, steps=4)
    assert torch.isfinite(out).all() and counter.samples == 4
    assert float((out - tm.ksample(patch(model), "flux", cfg=CFG, steps=4)).abs().max()) > 1e-5


@pytest.mark.parametrize("family", ("sd15", "sd3"))
@pytest.mark.parametrize("mode", ("self", "initialize"))
def test_a_run_that_blows_up_at_the_widget_maximum_stops_with_a_clear_error(family, mode):
    """delta 1 (the widget's maximum) at cfg 8 and 20 steps: the estimate compounds (|max| 3e5-1e11 unguarded, the
    guided prediction 1e4-5e7 times its first step's size; sane settings stay under 17x on the tiny models)."""
    with pytest.raises(RuntimeError, match=r"StreamDiffusion RCFG \(Guidance Zoo\): the run is blowing up .* "
                                           r"Lower cfg"):
        tm.ksample(patch(tm.make_model(family), mode=mode, delta=DELTA.high), family, cfg=8.0, steps=20)


@pytest.mark.parametrize("family", ("sd15", "sd3", "wan21"))
@pytest.mark.parametrize("mode", ("self", "initialize"))
def test_the_runaway_guard_lets_streamdiffusions_own_settings_run(family, mode):
    for cfg, steps in ((1.5, 4), (1.5, 20), (2.0, 8)):
        out = tm.ksample(patch(tm.make_model(family), mode=mode, delta=DELTA.high), family, cfg=cfg, steps=steps)
        assert torch.isfinite(out).all()
