"""CFG-family rules on real ComfyUI with tiny models of a UNet, a DiT and the video family: effect, neutral settings,
core parity, batch, fp16, state, stacking, model-call counts and bad input."""
import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from tiny_models import assert_close, assert_differs, max_diff
import comfy.samplers
from comfy_extras.nodes_cfg import CFGZeroStar as CoreCFGZeroStar
from comfy_extras.nodes_model_advanced import RescaleCFG as CoreRescaleCFG
from comfy_extras.nodes_tcfg import TCFG as CoreTCFG

from guidance_zoo.nodes.adaptive_guidance import AdaptiveGuidance
from guidance_zoo.nodes.apg import APG
from guidance_zoo.nodes.beta_cfg import BetaCFG
from guidance_zoo.nodes.cfg_schedule import CFGSchedule
from guidance_zoo.nodes.cfg_zero_star import CFGZeroStar
from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.dynamic_thresholding import DynamicThresholding
from guidance_zoo.nodes.fdg import FDG
from guidance_zoo.nodes.pag import PAG
from guidance_zoo.nodes.rescale_cfg import RescaleCFG
from guidance_zoo.nodes.tcfg import TCFG

FAMILIES = ("sd15", "flux", "wan21")
SAMPLE = {"ksampler": tm.ksample, "guider": tm.guider_sample}
CFG = 6.0

# node, paper-default inputs, inputs at which the rule is plain CFG (None: it has no such setting)
METHODS = {
    "schedule": (CFGSchedule, dict(schedule="linear", floor=0.0, sigma_low=0.0, sigma_high=1000.0, skip_uncond=True),
                 dict(schedule="constant", floor=0.0, sigma_low=0.0, sigma_high=1000.0, skip_uncond=True)),
    "interval": (CFGSchedule, dict(schedule="constant", floor=0.0, sigma_low=0.28, sigma_high=5.42, skip_uncond=True),
                 None),
    "tcfg": (TCFG, {}, None),
    "rescale": (RescaleCFG, dict(multiplier=0.7), dict(multiplier=0.0)),
    "cfg_zero_star": (CFGZeroStar, dict(zero_init_steps=1, mode="official"), None),
    "dynamic_thresholding": (DynamicThresholding, dict(percentile=0.995, mimic_scale=2.0),
                             dict(percentile=1.0, mimic_scale=CFG)),
    "fdg": (FDG, dict(high_scale=10.0, levels=2, parallel_weight_high=1.0, parallel_weight_low=1.0),
            dict(high_scale=CFG, levels=3, parallel_weight_high=1.0, parallel_weight_low=1.0)),
    "beta_cfg": (BetaCFG, dict(a=2.0, b=2.0, gamma=1.0), dict(a=1.0, b=1.0, gamma=0.0)),
    "adaptive_guidance": (AdaptiveGuidance, dict(threshold=0.85), dict(threshold=1.0)),
}
NEUTRAL = [name for name, (_, _, neutral) in METHODS.items() if neutral is not None]


def middle_interval(model) -> dict:
    """The middle of a 6-step run's sigmas: intervals are in sigma, which differs between eps and flow models."""
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "normal", 6)
    return dict(sigma_low=float(sigmas[4]), sigma_high=float(sigmas[1]))


def patch(model, name, **overrides):
    node, defaults, _ = METHODS[name]
    if name == "interval":
        defaults = dict(defaults, **middle_interval(model))
    return node.execute(model, **dict(defaults, **overrides)).result[0]


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", list(METHODS))
def test_rule_changes_the_output(name, family):
    model = tm.make_model(family)
    plain = tm.ksample(model, family, cfg=CFG, steps=6)
    out = tm.ksample(patch(model, name), family, cfg=CFG, steps=6)
    assert torch.isfinite(out).all()
    assert_differs(out, plain)


@pytest.mark.parametrize("path", list(SAMPLE))
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", NEUTRAL)
def test_rule_at_its_neutral_setting_is_plain_cfg(name, family, path):
    model = tm.make_model(family)
    neutral = patch(model, name, **METHODS[name][2])
    assert_close(SAMPLE[path](neutral, family, cfg=CFG), SAMPLE[path](model, family, cfg=CFG))


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", list(METHODS))
def test_rule_batch_of_two_equals_two_single_runs(name, family):
    model = patch(tm.make_model(family), name)
    tm.assert_batch_equals_single_runs(model, family, seeds=(3, 4), cfg=CFG)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", list(METHODS))
def test_rule_is_finite_in_fp16_and_repeats_exactly(name, family):
    model = patch(tm.make_model(family, dtype=torch.float16), name)
    first = tm.ksample(model, family, cfg=12.0, steps=4)
    assert torch.isfinite(first).all()
    torch.testing.assert_close(tm.ksample(model, family, cfg=12.0, steps=4), first, rtol=0, atol=0)


@pytest.mark.parametrize("name", list(METHODS))
def test_rule_at_cfg_one_is_a_no_op_with_one_evaluation_per_step(name):
    model = tm.make_model("flux")
    counted, counter = tm.counted(patch(model, name))
    assert_close(tm.ksample(counted, "flux", cfg=1.0, steps=3), tm.ksample(model, "flux", cfg=1.0, steps=3))
    assert counter.samples == 3


@pytest.mark.parametrize("path", list(SAMPLE))
@pytest.mark.parametrize("family", FAMILIES)
def test_tcfg_equals_core_tcfg(family, path):
    model = tm.make_model(family)
    assert_close(SAMPLE[path](patch(model, "tcfg"), family, cfg=CFG),
                 SAMPLE[path](CoreTCFG.execute(model).result[0], family, cfg=CFG))


@pytest.mark.parametrize("family", ("sd15", "sdxl"))
def test_rescale_cfg_equals_core_on_eps_models(family):
    model = tm.make_model(family)
    assert_close(tm.ksample(patch(model, "rescale"), family, cfg=CFG),
                 tm.ksample(CoreRescaleCFG().patch(model, 0.7)[0], family, cfg=CFG))


def test_rescale_cfg_uses_velocity_on_flow_models_unlike_core():
    model = tm.make_model("flux")
    ours = tm.ksample(patch(model, "rescale"), "flux", cfg=CFG)
    assert max_diff(ours, tm.ksample(CoreRescaleCFG().patch(model, 0.7)[0], "flux", cfg=CFG)) > 1e-3


@pytest.mark.parametrize("family", FAMILIES)
def test_cfg_zero_star_comfyui_mode_equals_core_and_official_mode_differs(family):
    model = tm.make_model(family)
    core = tm.ksample(CoreCFGZeroStar.execute(model).result[0], family, cfg=CFG)
    assert_close(tm.ksample(patch(model, "cfg_zero_star", mode="comfyui_core"), family, cfg=CFG), core)
    assert max_diff(tm.ksample(patch(model, "cfg_zero_star", zero_init_steps=0), family, cfg=CFG), core) > 1e-4


def test_cfg_zero_star_zero_init_leaves_the_first_flow_step_at_zero_velocity():
    model = tm.make_model("flux")
    one_step_zeroed = tm.ksample(patch(model, "cfg_zero_star", zero_init_steps=1), "flux", cfg=CFG, steps=1)
    noise = tm.noise_for("flux", [0])
    sigma_max = float(model.get_model_object("model_sampling").sigma_max)
    assert_close(one_step_zeroed, model.model.process_latent_out(noise * sigma_max))


def test_schedule_shapes_guidance_over_the_run():
    model = tm.make_model("sd15")
    outs = {kind: tm.ksample(patch(model, "schedule", schedule=kind), "sd15", cfg=CFG)
            for kind in ("linear", "cosine", "linear_decreasing", "constant")}
    assert_close(outs["constant"], tm.ksample(model, "sd15", cfg=CFG))
    for kind in ("linear", "cosine", "linear_decreasing"):
        assert max_diff(outs[kind], outs["constant"]) > 1e-3


@pytest.mark.parametrize("family", FAMILIES)
def test_guidance_interval_skips_the_uncond_pass_outside_the_interval(family):
    model = tm.make_model(family)
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "normal", 8)[:-1]
    low, high = float(sigmas[5]), float(sigmas[1])
    inside = sum(1 for s in sigmas if low < float(s) <= high)
    counted, counter = tm.counted(patch(model, "interval", sigma_low=low, sigma_high=high))
    skipped = tm.ksample(counted, family, cfg=CFG, steps=8)
    assert counter.samples == 2 * inside + (8 - inside) and inside == 4
    kept = tm.ksample(patch(model, "interval", sigma_low=low, sigma_high=high, skip_uncond=False), family, cfg=CFG,
                      steps=8)
    assert_close(skipped, kept)


def test_adaptive_guidance_at_its_default_threshold_saves_at_least_a_fifth_of_the_calls():
    model = tm.make_model("sd15")
    plain, plain_counter = tm.counted(model)
    tm.ksample(plain, "sd15", cfg=CFG, steps=10)
    counted, counter = tm.counted(patch(model, "adaptive_guidance", threshold=0.991))
    tm.ksample(counted, "sd15", cfg=CFG, steps=10)
    assert counter.samples <= 0.8 * plain_counter.samples
    print(f"AG: {counter.samples} vs CFG {plain_counter.samples} evaluations")


def test_adaptive_guidance_with_pag_keeps_pag_and_drops_only_the_uncond_pass():
    model = tm.make_model("sd15")
    counted, counter = tm.counted(PAG.execute(patch(model, "adaptive_guidance", threshold=0.991), 3.0, "").result[0])
    tm.ksample(counted, "sd15", cfg=CFG, steps=10)
    assert counter.calls == 10 and 2 * 10 < counter.samples < 3 * 10


@pytest.mark.parametrize("family", FAMILIES)
def test_schedule_apg_fdg_cfg_zero_star_stack_on_one_model(family):
    model = tm.make_model(family)
    chain = [lambda m: patch(m, "schedule"), lambda m: APG.execute(m, 0.0, 15.0, -0.5).result[0],
             lambda m: patch(m, "fdg"), lambda m: patch(m, "cfg_zero_star")]
    stacked = model
    for step in chain:
        stacked = step(stacked)
    out = tm.ksample(stacked, family, cfg=CFG)
    assert torch.isfinite(out).all()
    assert len(stacked.model_options["sampler_pre_cfg_function"]) == 4
    assert "sampler_cfg_function" not in stacked.model_options
    for step in chain:
        assert max_diff(out, tm.ksample(step(model), family, cfg=CFG)) > 1e-4


@pytest.mark.parametrize("name,inputs", [
    ("fdg", dict(levels=3, parallel_weight_low=0.5)), ("fdg", dict(levels=4, parallel_weight_high=0.5)),
    ("beta_cfg", dict(a=0.1)), ("beta_cfg", dict(b=0.5)), ("beta_cfg", dict(a=0.99, b=0.99)),
])
@pytest.mark.parametrize("family", ("sd15", "wan21"))
def test_settings_inside_the_widget_range_give_a_finite_latent(name, inputs, family):
    out = tm.ksample(patch(tm.make_model(family), name, **inputs), family, cfg=CFG, steps=4)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name,inputs,message", [
    ("rescale", dict(multiplier=float("nan")), "'multiplier' must be a finite number"),
    ("rescale", dict(multiplier=1.5), "'multiplier' must be between"),
    ("fdg", dict(high_scale=float("inf")), "'high_scale' must be a finite number"),
    ("fdg", dict(levels=9), "'levels' must be between"),
    ("beta_cfg", dict(a=0.0), "'a' must be between"),
    ("dynamic_thresholding", dict(percentile=float("nan")), "'percentile' must be a finite number"),
    ("adaptive_guidance", dict(threshold=-0.5), "'threshold' must be between"),
    ("cfg_zero_star", dict(mode="fast"), "'mode' must be one of"),
    ("cfg_zero_star", dict(zero_init_steps=-1), "'zero_init_steps' must be between"),
    ("schedule", dict(schedule="zigzag"), "'schedule' must be one of"),
    ("schedule", dict(sigma_low=5.0, sigma_high=1.0), "the interval is empty"),
])
def test_bad_input_gives_a_clear_error_naming_the_node(name, inputs, message):
    node = METHODS[name][0]
    with pytest.raises(NodeInputError, match=rf"\(Guidance Zoo\): .*{message}"):
        patch(tm.make_model("sd15"), name, **inputs)
    assert node.define_schema().display_name.endswith("(Guidance Zoo)")


def test_a_guidance_schedule_on_pags_scale_skips_its_pass_outside_the_interval():
    from guidance_zoo.nodes.schedule import GuidanceSchedule
    model = tm.make_model("flux")
    everywhere = GuidanceSchedule.execute("constant", 0.0, 0.0, 1000.0).result[0]
    assert_close(tm.ksample(PAG.execute(model, 3.0, "", everywhere).result[0], "flux", cfg=CFG),
                 tm.ksample(PAG.execute(model, 3.0, "").result[0], "flux", cfg=CFG))
    window = GuidanceSchedule.execute("constant", 0.0, **middle_interval(model)).result[0]
    counted, counter = tm.counted(PAG.execute(model, 3.0, "", window).result[0])
    windowed = tm.ksample(counted, "flux", cfg=CFG, steps=6)
    assert counter.calls == 6 and counter.samples == 2 * 6 + 3
    assert max_diff(windowed, tm.ksample(model, "flux", cfg=CFG, steps=6)) > 1e-3
    increasing = GuidanceSchedule.execute("linear", 0.0, 0.0, 1000.0).result[0]
    counted, counter = tm.counted(PAG.execute(model, 3.0, "", increasing).result[0])
    tm.ksample(counted, "flux", cfg=CFG, steps=6)
    assert counter.samples == 2 * 6 + 5


def test_guidance_schedule_rejects_an_empty_interval():
    from guidance_zoo.nodes.schedule import GuidanceSchedule
    with pytest.raises(NodeInputError, match=r"Guidance Schedule \(Guidance Zoo\): the interval is empty"):
        GuidanceSchedule.execute("linear", 0.0, 2.0, 1.0)


def test_cfg_zero_star_zero_init_applies_to_flow_models_only():
    model = tm.make_model("sd15")
    assert_close(tm.ksample(patch(model, "cfg_zero_star", zero_init_steps=3), "sd15", cfg=CFG),
                 tm.ksample(patch(model, "cfg_zero_star", zero_init_steps=0), "sd15", cfg=CFG))
