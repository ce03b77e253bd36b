"""S2-Guidance: the random block choice, the combine rule computed independently, and the node on real ComfyUI with
tiny models of every family (seeded, NFEs, batch, 5-D video, fp16, stacking, bad input)."""
import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
import perturbation_checks as checks
from support_matrix import cases

from guidance_zoo.attention_patches.blocks import step_seed
from guidance_zoo.attention_patches.families import layer_map
from guidance_zoo.core.s2 import choose_dropped, dropped_count
from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.s2 import S2Guidance, s2_default
from guidance_zoo.nodes.slg import SkipLayerGuidance


def s2(model, omega=1.0, drop_ratio=0.1, layers="", seed=0):
    return S2Guidance.execute(model, omega, drop_ratio, layers, seed).result[0]


def test_dropped_count_and_choice():
    assert [dropped_count(n, 0.1) for n in (1, 2, 10, 19, 36, 55)] == [1, 1, 1, 2, 4, 6]
    assert dropped_count(4, 0.5) == 2
    picks = {tuple(choose_dropped(20, 0.1, torch.Generator().manual_seed(s))) for s in range(30)}
    assert all(len(p) == 2 and p[0] < p[1] < 20 for p in picks) and len(picks) > 20
    assert choose_dropped(20, 0.1, torch.Generator().manual_seed(4)) == choose_dropped(
        20, 0.1, torch.Generator().manual_seed(4))


def test_step_seeds_differ_per_step_and_seed():
    sigmas = torch.tensor([14.6, 3.0, 0.5, 0.0])
    seeds = {step_seed(seed, {"sample_sigmas": sigmas, "sigmas": sigmas[i:i + 1]}) for seed in (0, 1) for i in range(3)}
    assert len(seeds) == 6


@pytest.mark.parametrize("family", ("flux", "sd15"))
def test_one_step_equals_cfg_plus_omega_times_cond_minus_the_dropped_sub_network(family):
    """The dropped blocks of step 0 are drawn here from the same seed; D_dropped comes from an SLG pass over them."""
    model = tm.make_model(family)
    lmap = layer_map(model)
    pool = lmap.parse(s2_default(lmap))
    dropped = [pool[i] for i in choose_dropped(len(pool), 0.1, torch.Generator().manual_seed(5 * 1_000_003))]
    names = ", ".join(layer.name for layer in dropped)
    d_cfg = tm.ksample(model, family, cfg=4.0, steps=1)
    d_c = tm.ksample(model, family, cfg=1.0, steps=1)
    d_dropped = 2 * d_c - tm.ksample(SkipLayerGuidance.execute(model, 1.0, names, 0.0, 1.0, 0.0).result[0], family,
                                     cfg=1.0, steps=1)
    ours = tm.ksample(s2(model, 0.7, 0.1, "", 5), family, cfg=4.0, steps=1)
    checks.assert_close(ours, d_cfg + 0.7 * (d_c - d_dropped))
    assert checks.max_diff(ours, d_cfg) > 1e-3


@pytest.mark.parametrize("family", cases("S2-Guidance", tm.supporting("S2-Guidance")))
def test_s2_changes_the_output_on_every_family(family):
    checks.changes_output(s2, family)


def test_s2_is_deterministic_for_a_seed_and_leaves_the_global_rng_alone():
    model = tm.make_model("flux")
    tm.ksample(model, "flux", steps=6)
    after_plain = torch.get_rng_state()
    a = tm.ksample(s2(model, seed=3), "flux", steps=6)
    assert torch.equal(after_plain, torch.get_rng_state())
    assert torch.equal(a, tm.ksample(s2(model, seed=3), "flux", steps=6))
    assert any(checks.max_diff(tm.ksample(s2(model, seed=s), "flux", steps=6), a) > 1e-4 for s in (4, 5, 6))


def test_s2_keeps_a_foreign_block_replace():
    checks.keeps_foreign_patches(lambda m: s2(m, 1.0, 0.5), "flux")


def test_s2_default_candidates_leave_out_the_first_and_last_block():
    lmap = layer_map(tm.make_model("flux"))
    assert s2_default(lmap) == "double 1, single 0"
    assert s2_default(layer_map(tm.make_model("sd3"))) == "block 0, block 1"   # only two blocks: both


@pytest.mark.parametrize("family,spec,message", [
    ("flux", "double 0-1", r"the first and last blocks \(double 0, single 1\) may not be dropped; remove double 0"),
    ("sd15", "output 3", r"may not be dropped; remove output 3:0"),
    ("sd3", "block 1", r"may not be dropped; remove block 1"),
    ("flux", "block 3", r"unknown layer group 'block' for Flux"),
])
def test_s2_rejects_the_first_and_last_block_and_unknown_layers_naming_the_node(family, spec, message):
    with pytest.raises(NodeInputError, match=r"S2-Guidance \(Guidance Zoo\): .*" + message):
        s2(tm.make_model(family), 1.0, 0.1, spec)


@pytest.mark.parametrize("ratio", [0.0, 0.6, float("nan"), -0.1])
def test_s2_rejects_a_drop_ratio_out_of_range(ratio):
    with pytest.raises(NodeInputError, match=r"S2-Guidance \(Guidance Zoo\): 'drop_ratio' must be"):
        s2(tm.make_model("flux"), 1.0, ratio)
