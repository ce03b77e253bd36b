"""SAG: kernels against ComfyUI's core SAG functions and the paper's eps formula, the node against core
SelfAttentionGuidance on the tiny UNets, cost, reductions, batch, split calls, fp16, stacking, refusal, bad input."""
import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from tiny_models import assert_close, assert_differs, max_diff
from foreign_patches import with_foreign_patches
from test_split_calls import one_call_per_cond
from support_matrix import cases
import comfy.samplers
from comfy.ldm.modules.attention import optimized_attention
from comfy_extras import nodes_sag as core_sag

from guidance_zoo.attention_patches.families import layer_map
from guidance_zoo.core.sag import attention_received, degrade, gaussian_blur, renoise, sag_guidance, salient_mask
from guidance_zoo.guiders.schedule import Schedule
from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.pag import PAG
from guidance_zoo.nodes.sag import SAG

SAMPLE = {"ksampler": tm.ksample, "guider": tm.guider_sample}
STEPS = 3


def sag(model, scale=0.5, blur_sigma=2.0, scale_schedule=None):
    return SAG.execute(model, scale, blur_sigma, scale_schedule).result[0]


def core(model, scale=0.5, blur_sigma=2.0):
    return core_sag.SelfAttentionGuidance.execute(model, scale, blur_sigma).result[0]


def random(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------------------------------------------- kernels

def test_attention_received_in_chunks_is_the_full_maps_column_sum():
    q, k = random(2, 3, 20, 8, seed=1), random(2, 3, 20, 8, seed=2)
    full = torch.softmax(q @ k.transpose(-1, -2) * 0.35, dim=-1)
    received = attention_received(q, k, 0.35, chunk=7)
    torch.testing.assert_close(received, full.mean(1).sum(1))
    torch.testing.assert_close(received.mean(1), torch.ones(2))


@pytest.mark.parametrize("shape,sigma", [((2, 4, 8, 8), 2.0), ((1, 4, 6, 10), 0.7), ((1, 2, 16, 12), 5.0)])
def test_blur_equals_core_gaussian_blur_2d(shape, sigma):
    x = random(*shape, seed=3)
    torch.testing.assert_close(gaussian_blur(x, sigma), core_sag.gaussian_blur_2d(x, 9, sigma), rtol=1e-5, atol=1e-6)


def test_blur_acts_per_frame_and_fits_latents_too_small_for_nine_taps():
    video = random(1, 4, 3, 8, 8, seed=4)
    blurred = gaussian_blur(video, 2.0)
    for frame in range(3):
        torch.testing.assert_close(blurred[:, :, frame], gaussian_blur(video[:, :, frame], 2.0))
    small = gaussian_blur(random(1, 4, 3, 4, seed=5), 2.0)
    assert small.shape == (1, 4, 3, 4) and torch.isfinite(small).all()


@pytest.mark.parametrize("grid,latent", [((4, 4), (8, 8)), ((4, 6), (8, 12))])
def test_mask_and_degraded_prediction_equal_core_create_blur_map(grid, latent):
    """Core records the full (B*H, N, N) map; ours the attention received per token, from q and k in chunks."""
    b, heads, n = 2, 2, grid[0] * grid[1]
    q, k = random(b, heads, n, 8, seed=6) * 2, random(b, heads, n, 8, seed=7) * 2
    full = torch.softmax(q @ k.transpose(-1, -2) * 8 ** -0.5, dim=-1).reshape(b * heads, n, n)
    x0 = random(b, 4, *latent, seed=8)
    mask = salient_mask(attention_received(q, k, 8 ** -0.5, chunk=5), grid, latent)
    assert 0 < float(mask.mean()) < 1
    torch.testing.assert_close(degrade(x0, mask, 2.0), core_sag.create_blur_map(x0, full, 2.0, 1.0),
                               rtol=1e-5, atol=1e-6)


def test_renoise_and_guidance_are_the_papers_eps_rule_in_denoised_terms():
    """eps_guided = eps_cfg + s (eps_u - eps_SAG), with x_hat = degraded + sigma eps_u (eps models, x = D + sigma eps)
    and eps_SAG = (x_hat - D_SAG) / sigma."""
    x, d_u, d_cfg, d_sag, degraded = (random(2, 4, 8, 8, seed=s) for s in range(9, 14))
    sigma, s = 3.0, 0.7
    eps_u = (x - d_u) / sigma
    x_hat = renoise(x, d_u, degraded, torch.ones(()))
    torch.testing.assert_close(x_hat, degraded + sigma * eps_u)
    eps_guided = (x - d_cfg) / sigma + s * (eps_u - (x_hat - d_sag) / sigma)
    torch.testing.assert_close(sag_guidance(d_cfg, degraded, d_sag, s), x - sigma * eps_guided, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------------------------- the node, end to end

@pytest.mark.parametrize("path", list(SAMPLE))
@pytest.mark.parametrize("family", tm.UNETS)
@pytest.mark.parametrize("seeds", [(0,), (5, 6)])
def test_sag_equals_core_self_attention_guidance_with_cfg(family, path, seeds):
    model = tm.make_model(family)
    ours = SAMPLE[path](sag(model), family, cfg=4.0, seeds=seeds)
    assert_differs(ours, SAMPLE[path](model, family, cfg=4.0, seeds=seeds))
    assert_close(ours, SAMPLE[path](core(model), family, cfg=4.0, seeds=seeds), 1e-5)


@pytest.mark.parametrize("family", tm.UNETS)
def test_at_cfg_1_sag_acts_on_the_cond_where_core_runs_an_uncond_pass_for_it(family):
    """Core SAG turns ComfyUI's cfg-1 skip off and guides with the uncond branch; ours, like the paper without CFG
    (and diffusers), guides with the cond branch at 2 evaluations. With the negative prompt equal to the positive the
    two rules are the same; with the skip turned off ours guides with the uncond branch like core."""
    model = tm.make_model(family)
    positive, negative = tm.make_conds(family)
    counted, counter = tm.counted(sag(model))
    ours = tm.ksample(counted, family, cfg=1.0, conds=(positive, negative))
    assert counter.calls == 2 * STEPS and counter.samples == 2 * STEPS
    assert_differs(ours, tm.ksample(model, family, cfg=1.0))
    assert_close(ours, tm.ksample(core(model), family, cfg=1.0, conds=(positive, positive)), 1e-5)
    assert_differs(ours, tm.ksample(core(model), family, cfg=1.0, conds=(positive, negative)))
    no_skip = sag(model)
    no_skip.model_options["disable_cfg1_optimization"] = True
    assert_close(tm.ksample(no_skip, family, cfg=1.0), tm.ksample(core(model), family, cfg=1.0), 1e-5)


@pytest.mark.parametrize("family", cases("SAG", tm.UNETS))
def test_sag_changes_the_output_at_three_evaluations_in_two_calls_per_step(family):
    model = tm.make_model(family)
    counted, counter = tm.counted(sag(model))
    out = tm.ksample(counted, family, cfg=4.0)
    assert torch.isfinite(out).all()
    assert_differs(out, tm.ksample(model, family, cfg=4.0))
    assert counter.calls == 2 * STEPS and counter.samples == 3 * STEPS


@pytest.mark.parametrize("settings", [dict(scale=0.0), dict(blur_sigma=0.0)])
def test_scale_or_blur_zero_is_the_unpatched_model_at_no_extra_evaluation(settings):
    model = tm.make_model("sd15")
    counted, counter = tm.counted(sag(model, **settings))
    assert_close(tm.ksample(counted, "sd15", cfg=4.0), tm.ksample(model, "sd15", cfg=4.0), 1e-6)
    assert counter.samples == 2 * STEPS


def test_outside_its_schedule_sag_runs_no_extra_pass():
    model = tm.make_model("sd15")
    counted, counter = tm.counted(sag(model, scale_schedule=Schedule("constant", 0.0, 0.0, 0.001)))
    assert_close(tm.ksample(counted, "sd15", cfg=4.0), tm.ksample(model, "sd15", cfg=4.0), 1e-6)
    assert counter.samples == 2 * STEPS
    assert_close(tm.ksample(sag(model, scale_schedule=Schedule()), "sd15", cfg=4.0),
                 tm.ksample(sag(model), "sd15", cfg=4.0), 1e-6)


@pytest.mark.parametrize("family", tm.UNETS)
def test_sag_batch_of_two_equals_two_single_runs(family):
    tm.assert_batch_equals_single_runs(sag(tm.make_model(family)), family, seeds=(5, 6), cfg=4.0)


def test_comfyui_splitting_the_step_into_one_call_per_cond_changes_nothing():
    model = tm.make_model("sd15")
    batched = tm.ksample(sag(model), "sd15", cfg=4.0, seeds=(5, 6))
    counted, counter = tm.counted(sag(model))
    with one_call_per_cond(model):
        split = tm.ksample(counted, "sd15", cfg=4.0, seeds=(5, 6))
    assert counter.calls == 3 * STEPS
    assert_close(split, batched, 1e-5)


def test_sag_captures_its_map_itself_when_another_node_ran_the_steps_call():
    """A foreign sampler_calc_cond_batch_function bypasses the call SAG hooks: SAG still applies, at one more
    evaluation (its own capture pass of the uncond)."""
    model = tm.make_model("sd15")
    reference = tm.ksample(sag(model), "sd15", cfg=4.0)
    foreign = model.clone()
    keys = ("model", "conds", "input", "sigma", "model_options")
    foreign.set_model_sampler_calc_cond_batch_function(
        lambda args: comfy.samplers._calc_cond_batch(*(args[key] for key in keys)))
    counted, counter = tm.counted(sag(foreign))
    assert_close(tm.ksample(counted, "sd15", cfg=4.0), reference, 1e-5)
    assert counter.samples == 4 * STEPS and counter.calls == 3 * STEPS


@pytest.mark.parametrize("family", tm.UNETS)
def test_sag_fp16_stays_finite(family):
    model = tm.make_model(family, dtype=torch.float16)
    assert model.model.get_dtype() == torch.float16
    out = tm.ksample(sag(model, 1.0), family, cfg=4.0)
    assert torch.isfinite(out).all()
    assert_differs(out, tm.ksample(model, family, cfg=4.0))


def test_foreign_attn1_replace_override_and_post_cfg_function_keep_running():
    """A pass-through attn1 replace on SAG's layer, an attention override and a post-CFG function of another pack
    still run in every call and leave SAG's result unchanged; SAG's guidance lands after the foreign post-CFG step."""
    model = tm.make_model("sd15")
    reference = tm.ksample(sag(model), "sd15", cfg=4.0)
    foreign, calls = with_foreign_patches(model, block=False)
    seen = []

    def foreign_attn1(q, k, v, extra_options):
        seen.append(q.shape[0])
        return optimized_attention(q, k, v, extra_options["n_heads"])
    post_cfg = []
    foreign.set_model_attn1_replace(foreign_attn1, "middle", 0)
    foreign.set_model_sampler_post_cfg_function(lambda args: post_cfg.append(1) or args["denoised"])
    assert_close(tm.ksample(sag(foreign), "sd15", cfg=4.0), reference, 1e-5)
    assert seen == [2, 1] * STEPS and len(post_cfg) == STEPS and calls["override"] > 0


def test_sag_and_pag_stack_in_either_order_with_pags_pass_in_the_steps_call():
    model = tm.make_model("sd15")

    def pag(m):
        return PAG.execute(m, 2.0, "").result[0]
    counted, counter = tm.counted(sag(pag(model)))
    stacked = tm.ksample(counted, "sd15", cfg=4.0)
    assert counter.calls == 2 * STEPS and counter.samples == 4 * STEPS
    assert_close(stacked, tm.ksample(pag(sag(model)), "sd15", cfg=4.0), 1e-5)
    for alone in (tm.ksample(sag(model), "sd15", cfg=4.0), tm.ksample(pag(model), "sd15", cfg=4.0)):
        assert max_diff(stacked, alone) > 1e-3 * float(alone.abs().max())


@pytest.mark.parametrize("family", cases("SAG", [], tm.DITS))
def test_sag_refuses_dits_naming_the_node_the_input_and_the_fix(family):
    """The family adapter refuses SAG (its 'refused' set); the node says so before anything is patched."""
    model = tm.make_model(family)
    assert not layer_map(model).family.supports("SAG")
    expected = (r"SAG \(Guidance Zoo\): the 'model' input is a .* model .*UNets \(SD1.5, SDXL\) only\. Connect a UNet "
                r"model, or use PAG or SEG")
    with pytest.raises(NodeInputError, match=expected):
        sag(model)


@pytest.mark.parametrize("settings,message", [
    (dict(scale=float("nan")), r"'scale' must be a finite number"),
    (dict(scale=-0.5), r"'scale' must be between 0.0 and 10.0"),
    (dict(scale=11.0), r"'scale' must be between 0.0 and 10.0"),
    (dict(blur_sigma=float("nan")), r"'blur_sigma' must be a finite number"),
    (dict(blur_sigma=-1.0), r"'blur_sigma' must be between 0.0 and 10.0"),
    (dict(blur_sigma=float("inf")), r"'blur_sigma' must be a finite number"),
])
def test_sag_rejects_bad_input_naming_the_node(settings, message):
    with pytest.raises(NodeInputError, match=rf"SAG \(Guidance Zoo\): {message}"):
        sag(tm.make_model("sd15"), **settings)
