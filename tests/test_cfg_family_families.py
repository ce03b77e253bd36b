"""The CFG-family rules and NFE savers on every family (their support-matrix cells): each changes the output there,
and its mechanism holds there too: the rule at its neutral setting is plain CFG, TCFG and CFG-Zero* (ComfyUI's mode)
equal the core nodes, and the savers skip the uncond evaluations they promise (counted on the model). The rules'
formulas, batch, fp16 and bad input are tested on three families in test_cfg_family.py."""
import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from support_matrix import cases
from test_cfg_family import CFG, METHODS, patch
from tiny_models import assert_close, assert_differs
from comfy_extras.nodes_cfg import CFGZeroStar as CoreCFGZeroStar
from comfy_extras.nodes_tcfg import TCFG as CoreTCFG

from guidance_zoo.nodes import (adaptive_guidance, beta_cfg, cfg_cache, cfg_zero_star, dynamic_thresholding, fdg,
                                linear_ag, rescale_cfg, tcfg)
from guidance_zoo.nodes.cfg_cache import FasterCacheCFGCache
from guidance_zoo.nodes.linear_ag import LinearAdaptiveGuidance

STEPS = 4
RULES = {"tcfg": tcfg, "rescale": rescale_cfg, "cfg_zero_star": cfg_zero_star,
         "dynamic_thresholding": dynamic_thresholding, "fdg": fdg, "beta_cfg": beta_cfg,
         "adaptive_guidance": adaptive_guidance}
CORE = {"tcfg": (lambda model: CoreTCFG.execute(model).result[0], {}),
        "cfg_zero_star": (lambda model: CoreCFGZeroStar.execute(model).result[0], dict(mode="comfyui_core"))}
CACHE_EVERYWHERE = dict(full_every=2, skip_below_timestep=1001.0, alpha_low=1.1, low_timestep_low=-1.0,
                        low_timestep_high=1001.0, alpha_high=1.1, high_timestep_low=-1.0, high_timestep_high=1001.0)


def rule_cases() -> list:
    return [pytest.param(name, *case.values, id=f"{name}-{case.id}", marks=case.marks)
            for name, module in RULES.items() for case in cases(module.METHOD_INFO.name, tm.FAMILIES)]


@pytest.mark.parametrize("name,family", rule_cases())
def test_rule_changes_the_output_and_its_mechanism_holds_on_every_family(name, family):
    model = tm.make_model(family)
    plain = tm.ksample(model, family, cfg=CFG, steps=STEPS)
    out = tm.ksample(patch(model, name), family, cfg=CFG, steps=STEPS)
    assert torch.isfinite(out).all()
    assert_differs(out, plain)
    if METHODS[name][2] is not None:
        assert_close(tm.ksample(patch(model, name, **METHODS[name][2]), family, cfg=CFG, steps=STEPS), plain)
    else:
        core, ours = CORE[name]
        assert_close(tm.ksample(patch(model, name, **ours), family, cfg=CFG, steps=STEPS),
                     tm.ksample(core(model), family, cfg=CFG, steps=STEPS))


@pytest.mark.parametrize("family", cases(cfg_cache.METHOD_INFO.name, tm.FAMILIES))
def test_cfg_cache_skips_every_other_uncond_evaluation_on_every_family(family):
    model = tm.make_model(family)
    plain = tm.ksample(model, family, cfg=CFG, steps=STEPS)
    counted, counter = tm.counted(FasterCacheCFGCache.execute(model, **CACHE_EVERYWHERE).result[0])
    out = tm.ksample(counted, family, cfg=CFG, steps=STEPS)
    assert counter.calls == STEPS and counter.samples == 2 + 1 + 2 + 1
    assert torch.isfinite(out).all()
    assert_differs(out, plain)
    full = FasterCacheCFGCache.execute(model, **dict(CACHE_EVERYWHERE, full_every=1)).result[0]
    torch.testing.assert_close(tm.ksample(full, family, cfg=CFG, steps=STEPS), plain, rtol=0, atol=0)


@pytest.mark.parametrize("family", cases(linear_ag.METHOD_INFO.name, tm.FAMILIES))
def test_linear_ag_runs_one_evaluation_after_its_warmup_on_every_family(family):
    model = tm.make_model(family)
    plain = tm.ksample(model, family, cfg=CFG, steps=STEPS)
    counted, counter = tm.counted(LinearAdaptiveGuidance.execute(model, 2, "").result[0])
    out = tm.ksample(counted, family, cfg=CFG, steps=STEPS)
    assert counter.calls == STEPS and counter.samples == 2 * 2 + 2
    assert torch.isfinite(out).all()
    # the fitted uncond is meant to be close to the real one: on PixArt's tiny model (latents ~1e4) ~1e-4 relative
    assert_differs(out, plain, rel=1e-5)
    warm = LinearAdaptiveGuidance.execute(model, STEPS, "").result[0]
    torch.testing.assert_close(tm.ksample(warm, family, cfg=CFG, steps=STEPS), plain, rtol=0, atol=0)
