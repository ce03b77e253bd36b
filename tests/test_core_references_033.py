"""Parity with the guidance nodes ComfyUI 0.33 added to its core (absent in 0.3.75, so skipped there):
NAGuidance (comfy_extras/nodes_nag.py) against our NAG, DualModelGuider against our Autoguidance and
Unconditional Prior guiders. Where the two differ by design, the test states both and by how much."""
import importlib.util

import pytest

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from tiny_models import assert_close, assert_differs, max_diff

from guidance_zoo.nodes.autoguidance import AutoguidanceGuider
from guidance_zoo.nodes.nag import NAG
from guidance_zoo.nodes.unconditional_prior import UnconditionalPriorGuider

HAS_CORE_NAG = importlib.util.find_spec("comfy_extras.nodes_nag") is not None
import comfy_extras.nodes_custom_sampler as core_sampling  # noqa: E402

HAS_DUAL = hasattr(core_sampling, "DualModelGuider")
needs_nag = pytest.mark.skipif(not HAS_CORE_NAG, reason="this ComfyUI has no core NAGuidance (added after 0.3.75)")
needs_dual = pytest.mark.skipif(not HAS_DUAL, reason="this ComfyUI has no core DualModelGuider (added after 0.3.75)")
SCALE, TAU, ALPHA = 5.0, 2.5, 0.25


def core_nag(model):
    from comfy_extras.nodes_nag import NAGuidance
    return NAGuidance.execute(model, SCALE, ALPHA, TAU).result[0]


def ours_nag(model, negative):
    return NAG.execute(model, negative, SCALE, TAU, ALPHA, 0.0).result[0]


def sample_cfg1(model, family, positive, negative):
    return tm.ksample(model, family, cfg=1.0, conds=(positive, negative))


def same_pooled(negative, positive):
    """The negative with the positive's pooled vector (what our NAG's negative row uses)."""
    return [[negative[0][0], dict(negative[0][1], pooled_output=positive[0][1]["pooled_output"])]]


@needs_nag
@pytest.mark.parametrize("family,pooled_negative", [pytest.param(f, p, id=f) for f, p in
                                                     (("flux", True), ("flux2", False), ("chroma", False))])
def test_nag_equals_core_nagidance_on_flux_blocks_at_cfg_1(family, pooled_negative):
    """Core NAGuidance takes the KSampler's negative as NAG's negative and runs it as the uncond row at cfg 1 (it
    turns the cfg-1 skip off), writing the guided image-token attention into both rows: the same joint-attention
    NAG as ours, whose negative is an extra batched row. On Flux the two differ by design: core's negative row is
    modulated by the negative prompt's pooled CLIP vector, ours (like the paper, which changes only the attention
    context) by the positive's; with the positive's pooled vector in the negative they are equal."""
    model = tm.make_model(family)
    positive, negative = tm.make_conds(family)
    ours = sample_cfg1(ours_nag(model, negative), family, positive, negative)
    core = sample_cfg1(core_nag(model), family, positive, negative)
    assert_differs(core, sample_cfg1(model, family, positive, negative))
    if pooled_negative:
        assert_differs(ours, core)
        core = sample_cfg1(core_nag(model), family, positive, same_pooled(negative, positive))
    assert_close(ours, core, rel=1e-4)


@needs_nag
@pytest.mark.parametrize("family,core_hooks_in", [pytest.param(f, h, id=f) for f, h in
                                                   (("sd15", True), ("sd3", False), ("wan21", False))])
def test_where_core_nagidance_differs_from_nag(family, core_hooks_in):
    """SD1.5: core applies its rule to the self-attention outputs of the cond and uncond rows; the paper (and ours)
    to the cross-attention output, with the same image queries for both contexts, so the results differ. SD3, Wan:
    core NAGuidance has no hook in these models (its attn1_output_patch is read by UNet and Flux blocks only) and
    leaves the output as plain sampling at cfg 1 with the uncond row run; ours acts."""
    model = tm.make_model(family)
    positive, negative = tm.make_conds(family)
    plain = sample_cfg1(model, family, positive, negative)
    core = sample_cfg1(core_nag(model), family, positive, negative)
    ours = sample_cfg1(ours_nag(model, negative), family, positive, negative)
    assert_differs(ours, plain)
    if core_hooks_in:
        assert_differs(core, plain)
        assert_differs(ours, core)
    else:
        assert max_diff(core, plain) <= 1e-5 * plain.abs().max().item()


def dual_model(model, second, positive, negative, cfg):
    return core_sampling.DualModelGuider.execute(model, positive, cfg, second, negative).result[0]


def run_guider(guider, model, family):
    import comfy.samplers
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "normal", 3)
    return guider.sample(tm.noise_for(family, [0]), tm.latent(family, 1), comfy.samplers.sampler_object("euler"),
                         sigmas, disable_pbar=True, seed=0)


@needs_dual
@pytest.mark.parametrize("family", ("sd15", "sd3", "wan21"))
def test_unconditional_prior_equals_core_dual_model_guider(family):
    """D = D_base(uncond) + cfg (D(cond) - D_base(uncond)): core's dual-model CFG, the negative on the base model."""
    main, base = tm.make_model(family), tm.make_model(family, seed=1)
    positive, negative = tm.make_conds(family)
    ours = run_guider(UnconditionalPriorGuider.execute(main, base, positive, negative, 4.0).result[0], main, family)
    core = run_guider(dual_model(main, base, positive, negative, 4.0), main, family)
    assert_differs(core, run_guider(dual_model(main, main, positive, negative, 4.0), main, family))
    assert_close(ours, core, rel=1e-4)


@needs_dual
@pytest.mark.parametrize("family", ("sd15", "flux"))
def test_autoguidance_equals_core_dual_model_guider_on_the_positive(family):
    """Autoguidance at cfg 1 is D_weak(c) + w (D(c) - D_weak(c)): core's dual-model guider with the weak model as its
    negative model, the positive prompt as its negative and cfg w."""
    main, weak = tm.make_model(family), tm.make_model(family, seed=1)
    positive, negative = tm.make_conds(family)
    ours = run_guider(AutoguidanceGuider.execute(main, weak, positive, negative, 2.0, 1.0).result[0], main, family)
    core = run_guider(dual_model(main, weak, positive, positive, 2.0), main, family)
    assert_differs(core, run_guider(dual_model(main, main, positive, positive, 2.0), main, family))
    assert_close(ours, core, rel=1e-4)
