"""Few-step runs (4 steps, as Turbo, Lightning, LCM and CausVid users run them): every method with a window, warm-up
or switch either acts, or logs one warning per run naming the node, the setting and a value, and that value acts."""
import logging
import re

import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from tiny_models import assert_close, assert_differs
import comfy.sample
from comfy_extras.nodes_model_advanced import ModelSamplingSD3

from guidance_zoo.nodes.adaptive_guidance import AdaptiveGuidance
from guidance_zoo.nodes.cfg_cache import FasterCacheCFGCache
from guidance_zoo.nodes.cfg_schedule import CFGSchedule
from guidance_zoo.nodes.linear_ag import LinearAdaptiveGuidance
from guidance_zoo.nodes.nag import NAG
from guidance_zoo.nodes.pag import PAG
from guidance_zoo.nodes.schedule import GuidanceSchedule
from guidance_zoo.nodes.slg import SkipLayerGuidance
from guidance_zoo.nodes.tsg import TimeStepGuidance

STEPS, CFG = 4, 4.0


def sample(model, family: str, scheduler: str = "normal", cfg: float = CFG) -> torch.Tensor:
    positive, negative = tm.make_conds(family)
    return comfy.sample.sample(model, tm.noise_for(family, [0]), STEPS, cfg, "euler", scheduler, positive, negative,
                               tm.latent(family), denoise=1.0, disable_pbar=True, seed=0)


def run(caplog, model, family: str, **kwargs) -> tuple[torch.Tensor, list[str], int]:
    """The 4-step result, our warnings of the run and the model evaluations it took."""
    counted, counter = tm.counted(model)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        out = sample(counted, family, **kwargs)
    return out, [r.getMessage() for r in caplog.records if "(Guidance Zoo)" in r.getMessage()], counter.samples


def suggested(warnings: list[str], setting: str) -> float:
    assert len(warnings) == 1, warnings
    return float(re.search(rf"try {setting} ([\d.]+)", warnings[0]).group(1))


def wan_shift_8():
    return ModelSamplingSD3.patch(ModelSamplingSD3(), tm.make_model("wan21"), 8.0)[0]


@pytest.mark.parametrize("family", ("sd15", "sd3", "flux"))
def test_slg_acts_on_the_nearest_step_by_default_when_its_window_holds_no_step(caplog, family):
    model = tm.make_model(family)
    out, warnings, _ = run(caplog, SkipLayerGuidance.execute(model, 3.0, "", 0.01, 0.15, 0.0).result[0], family)
    assert len(warnings) == 1 and "it acts on the nearest step instead" in warnings[0], warnings
    assert_differs(out, sample(model, family))
    many, warnings, _ = run(caplog, SkipLayerGuidance.execute(model, 3.0, "", 0.0, 1.0, 0.0, 1).result[0], family)
    assert warnings == []


@pytest.mark.parametrize("family", ("sd15", "sd3", "flux"))
def test_slg_with_min_steps_0_warns_that_its_window_holds_no_step_and_its_suggested_end_percent_acts(caplog, family):
    model = tm.make_model(family)
    out, warnings, _ = run(caplog, SkipLayerGuidance.execute(model, 3.0, "", 0.01, 0.15, 0.0, 0).result[0], family)
    assert "Skip-Layer Guidance (Guidance Zoo): no step of this 4-step schedule" in warnings[0]
    assert_close(out, sample(model, family), rel=1e-6)
    end = suggested(warnings, "end_percent")
    acting, warnings, _ = run(caplog, SkipLayerGuidance.execute(model, 3.0, "", 0.01, end, 0.0, 0).result[0],
                              family)
    assert warnings == []
    assert_differs(acting, out)


def test_the_warning_comes_once_per_run():
    model = SkipLayerGuidance.execute(tm.make_model("sd3"), 3.0, "", 0.01, 0.15, 0.0).result[0]
    for _ in range(2):
        with pytest.MonkeyPatch.context() as patch:
            seen = []
            patch.setattr(logging, "warning", lambda message, *args: seen.append(message))
            sample(model, "sd3")
        assert len([m for m in seen if "Skip-Layer Guidance" in m]) == 1


@pytest.mark.parametrize("family", ("sd15", "flux"))
def test_linear_ag_warns_that_its_warm_up_covers_the_run_and_its_suggested_warm_up_saves(caplog, family):
    model = tm.make_model(family)
    _, warnings, evaluations = run(caplog, LinearAdaptiveGuidance.execute(model, 5, "").result[0], family)
    assert "warmup_steps 5 covers all 4 model calls of this run" in warnings[0] and evaluations == 8
    warmup = int(suggested(warnings, "warmup_steps"))
    _, warnings, evaluations = run(caplog, LinearAdaptiveGuidance.execute(model, warmup, "").result[0], family)
    assert warnings == [] and evaluations == 2 * warmup + (STEPS - warmup)


def faster_cache(model, skip_below: float = 641.0):
    return FasterCacheCFGCache.execute(model, 5, skip_below, 1.1, 99.0, 901.0, 1.1, -1.0, 301.0).result[0]


def test_faster_cache_acts_at_4_steps_on_sd15(caplog):
    _, warnings, evaluations = run(caplog, faster_cache(tm.make_model("sd15")), "sd15")
    assert warnings == [] and evaluations < 8


def test_faster_cache_warns_on_wan_at_4_simple_steps_and_its_suggested_timestep_skips(caplog):
    model = wan_shift_8()
    _, warnings, evaluations = run(caplog, faster_cache(model), "wan21", scheduler="simple")
    assert "is below skip_below_timestep 641 between full steps" in warnings[0] and evaluations == 8
    skip_below = suggested(warnings, "skip_below_timestep")
    _, warnings, evaluations = run(caplog, faster_cache(model, skip_below), "wan21", scheduler="simple")
    assert warnings == [] and evaluations == 7


def test_adaptive_guidance_switches_at_4_steps_on_sd15(caplog):
    _, warnings, evaluations = run(caplog, AdaptiveGuidance.execute(tm.make_model("sd15"), 0.991).result[0], "sd15")
    assert warnings == [] and evaluations < 8


@pytest.mark.parametrize("family", ("flux", "wan21"))
def test_adaptive_guidance_warns_when_it_never_switches_and_its_suggested_threshold_saves(caplog, family):
    model = tm.make_model(family)
    _, warnings, evaluations = run(caplog, AdaptiveGuidance.execute(model, 0.991).result[0], family)
    assert "did not pass threshold 0.991 before the last step" in warnings[0] and evaluations == 8
    threshold = suggested(warnings, "threshold")
    _, warnings, evaluations = run(caplog, AdaptiveGuidance.execute(model, threshold).result[0], family)
    assert warnings == [] and evaluations < 8


def test_tsg_acts_at_4_steps_by_default_and_warns_when_its_interval_holds_no_step(caplog):
    model = tm.make_model("sd15")
    cond_only = sample(model, "sd15", cfg=1.0)
    out, warnings, _ = run(caplog, TimeStepGuidance.execute(model, 3.0, 0.25, 400.0, 1000.0).result[0], "sd15")
    assert warnings == []
    assert_differs(out, cond_only)
    out, warnings, _ = run(caplog, TimeStepGuidance.execute(model, 3.0, 0.25, 1000.0, 1000.0).result[0], "sd15")
    assert "TSG (Guidance Zoo): no step of this 4-step schedule" in warnings[0]
    assert_close(out, cond_only, rel=1e-6)
    t_min = suggested(warnings, "t_min")
    out, warnings, _ = run(caplog, TimeStepGuidance.execute(model, 3.0, 0.25, t_min, 1000.0).result[0], "sd15")
    assert warnings == []
    assert_differs(out, cond_only)


def test_cfg_schedule_acts_by_default_and_warns_when_its_interval_is_above_every_sigma(caplog):
    model = tm.make_model("flux")
    cond_only = sample(model, "flux", cfg=1.0)
    out, warnings, _ = run(caplog, CFGSchedule.execute(model, "linear", 0.0, 0.0, 1000.0, True).result[0], "flux")
    assert warnings == []
    assert_differs(out, cond_only)
    out, warnings, _ = run(caplog, CFGSchedule.execute(model, "constant", 0.0, 2.0, 1000.0, True).result[0], "flux")
    assert "CFG Schedule (Guidance Zoo): no step of this 4-step schedule" in warnings[0]
    assert_close(out, cond_only, rel=1e-6)
    low = suggested(warnings, "sigma_low")
    out, warnings, _ = run(caplog, CFGSchedule.execute(model, "constant", 0.0, low, 1000.0, True).result[0], "flux")
    assert warnings == []
    assert_differs(out, cond_only)


def test_guidance_schedule_on_pag_warns_when_its_interval_is_above_every_sigma(caplog):
    model = tm.make_model("sd15")

    def pag(low):
        return PAG.execute(model, 3.0, "", GuidanceSchedule.execute("constant", 0.0, low, 1000.0).result[0]).result[0]
    plain = sample(model, "sd15")
    out, warnings, evaluations = run(caplog, pag(20.0), "sd15")
    assert "Guidance Schedule (Guidance Zoo): no step of this 4-step schedule" in warnings[0] and evaluations == 8
    assert_close(out, plain, rel=1e-6)
    out, warnings, evaluations = run(caplog, pag(suggested(warnings, "sigma_low")), "sd15")
    assert warnings == [] and evaluations == 9
    assert_differs(out, plain)


def test_nag_warns_when_sigma_end_is_above_every_sigma(caplog):
    model = tm.make_model("flux")
    negative = tm.make_conds("flux", seed=7, tokens=5)[0]
    plain = sample(model, "flux")
    out, warnings, _ = run(caplog, NAG.execute(model, negative, 5.0, 2.5, 0.25, 5.0).result[0], "flux")
    assert "NAG (Guidance Zoo): sigma_end 5 is above every step's sigma" in warnings[0]
    assert_close(out, plain, rel=1e-6)
    sigma_end = suggested(warnings, "sigma_end")
    out, warnings, _ = run(caplog, NAG.execute(model, negative, 5.0, 2.5, 0.25, sigma_end).result[0], "flux")
    assert warnings == []
    assert_differs(out, plain)


def test_slg_window_at_the_end_of_the_schedule_acts_on_the_nearest_step(caplog):
    """start = end = 1.0 puts the window at sigma 0, where no step is: the nearest (last) step acts, no error."""
    model = tm.make_model("sd15")
    out, warnings, _ = run(caplog, SkipLayerGuidance.execute(model, 3.0, "", 1.0, 1.0, 0.0, 1).result[0], "sd15")
    assert torch.isfinite(out).all() and "nearest step" in warnings[0]
    assert float((out - sample(model, "sd15")).abs().max()) > 1e-3  # a small effect: the last step's sigma is 0.03
