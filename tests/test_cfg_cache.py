"""FasterCache CFG-Cache on real ComfyUI with tiny models: kernel round trip, effect, model-call counts, plain CFG
when every step is full, batch, fp16, repeatability, 4-D and 5-D, bad input."""
import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from tiny_models import assert_close, assert_differs

from guidance_zoo.core.cfg_cache import estimate_uncond, frequency_deltas, low_frequency_mask
from guidance_zoo.nodes.cfg_cache import FasterCacheCFGCache
from guidance_zoo.nodes.common import NodeInputError

CFG = 6.0
DEFAULTS = dict(full_every=5, skip_below_timestep=641.0, alpha_low=1.1, low_timestep_low=99.0,
                low_timestep_high=901.0, alpha_high=1.1, high_timestep_low=-1.0, high_timestep_high=301.0)
EVERYWHERE = dict(DEFAULTS, skip_below_timestep=1001.0)


def patch(model, **overrides):
    return FasterCacheCFGCache.execute(model, **dict(DEFAULTS, **overrides)).result[0]


def test_kernel_rebuilds_the_uncond_exactly_from_its_own_deltas_per_frame():
    g = torch.Generator().manual_seed(0)
    cond, uncond = torch.randn(2, 3, 4, 2, 10, 8, generator=g).unbind(0)
    assert_close(estimate_uncond(cond, *frequency_deltas(cond, uncond)), uncond, rel=1e-5)
    low, _ = frequency_deltas(cond, uncond)
    assert low.shape == (3, 4, 2, 10, 8) and int(low_frequency_mask(10, 8).sum()) == 5
    frame = frequency_deltas(cond[:, :, 1], uncond[:, :, 1])[0]
    torch.testing.assert_close(low[:, :, 1], frame)


@pytest.mark.parametrize("family", ("sd15", "flux", "wan21"))
def test_cfg_cache_changes_the_output_and_full_every_step_is_plain_cfg(family):
    model = tm.make_model(family)
    plain = tm.ksample(model, family, cfg=CFG, steps=6)
    cached = tm.ksample(patch(model, **EVERYWHERE), family, cfg=CFG, steps=6)
    assert torch.isfinite(cached).all()
    assert_differs(cached, plain)
    torch.testing.assert_close(tm.ksample(patch(model, full_every=1, skip_below_timestep=1001.0), family, cfg=CFG,
                                          steps=6), plain, rtol=0, atol=0)


def test_cfg_cache_really_skips_the_uncond_evaluations():
    model = tm.make_model("sd15")
    plain, plain_counter = tm.counted(model)
    tm.ksample(plain, "sd15", cfg=CFG, steps=10)
    counted, counter = tm.counted(patch(model, **EVERYWHERE))
    tm.ksample(counted, "sd15", cfg=CFG, steps=10)
    assert plain_counter.samples == 20 and counter.samples == 2 * 2 + 8 and counter.calls == 10
    defaults, default_counter = tm.counted(patch(model))
    tm.ksample(defaults, "sd15", cfg=CFG, steps=10)
    print(f"CFG-Cache: {counter.samples} (skip anywhere), {default_counter.samples} (diffusers defaults) "
          f"vs CFG {plain_counter.samples} evaluations in 10 steps")
    assert 12 < default_counter.samples < 20
    with_guider, guider_counter = tm.counted(patch(model, **EVERYWHERE))
    tm.guider_sample(with_guider, "sd15", cfg=CFG, steps=10)
    assert guider_counter.samples == 12


@pytest.mark.parametrize("family", ("flux", "wan21"))
def test_cfg_cache_batch_of_two_equals_two_single_runs(family):
    model = patch(tm.make_model(family), **EVERYWHERE)
    tm.assert_batch_equals_single_runs(model, family, seeds=(3, 4), cfg=CFG, steps=4)


def test_cfg_cache_is_finite_in_fp16_and_repeats_exactly():
    model = patch(tm.make_model("sd15", dtype=torch.float16), **EVERYWHERE)
    first = tm.ksample(model, "sd15", cfg=12.0, steps=6)
    assert torch.isfinite(first).all()
    torch.testing.assert_close(tm.ksample(model, "sd15", cfg=12.0, steps=6), first, rtol=0, atol=0)


def test_cfg_cache_at_cfg_one_is_a_no_op():
    model = tm.make_model("flux")
    counted, counter = tm.counted(patch(model, **EVERYWHERE))
    assert_close(tm.ksample(counted, "flux", cfg=1.0, steps=3), tm.ksample(model, "flux", cfg=1.0, steps=3))
    assert counter.samples == 3


@pytest.mark.parametrize("bad", [dict(full_every=0), dict(alpha_low=float("nan")), dict(full_every=2.5),
                                 dict(low_timestep_low=901.0, low_timestep_high=99.0)])
def test_cfg_cache_rejects_bad_input_naming_the_node(bad):
    with pytest.raises(NodeInputError, match="FasterCache CFG-Cache"):
        patch(tm.make_model("sd15"), **bad)
