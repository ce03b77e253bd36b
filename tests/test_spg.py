"""SPG: the node against a separately written reference (style pass, K/V recorded and injected by the test's own
attn1 patches), on every family, cost, neutral setting, batch, fp16, split calls, fallback, stacking, bad input."""
import pytest
import torch
import torch.nn.functional as F

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from tiny_models import assert_close, assert_differs
from support_matrix import cases
import comfy.sample
import comfy.samplers

from guidance_zoo.attention_patches.families import layer_map
from guidance_zoo.guiders.spg import style_noise
from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.pag import PAG
from guidance_zoo.nodes.scfg import SCFG
from guidance_zoo.nodes.spg import SPG


def style_for(family, seed=3, scale=1.0):
    return {"samples": torch.randn((1,) + tm.FAMILIES[family][2], generator=torch.Generator().manual_seed(seed))
            * scale}


def spg(model, family, scale=3.0, layers="", style=None):
    return SPG.execute(model, style or style_for(family), scale, layers).result[0]


def sample(model, family, seeds=(0,), seed=0, cfg=4.0, steps=3):
    """comfy.sample.sample with one sampler seed for the whole batch (SPG's style noise follows that seed)."""
    positive, negative = tm.make_conds(family)
    return comfy.sample.sample(model, tm.noise_for(family, list(seeds)), steps, cfg, "euler", "normal", positive,
                               negative, tm.latent(family, len(seeds)), disable_pbar=True, seed=seed)


def canonical(t, heads):
    return t.view(t.shape[0], -1, heads, t.shape[-1] // heads).transpose(1, 2)


def attention(q, k, v, heads):
    out = F.scaled_dot_product_attention(canonical(q, heads), canonical(k, heads), canonical(v, heads))
    return out.transpose(1, 2).reshape(q.shape[0], -1, q.shape[-1])


def reference(model, family, style, scale, layer_names, seed):
    """One sampling step of SPG written out: the official two-pass form, run by a test post-CFG function."""
    lmap = layer_map(model)
    layers = lmap.parse(layer_names)
    base = model.model

    def post_cfg(args):
        x, sigma, mo = args["input"], args["sigma"], args["model_options"]
        latent = base.process_latent_in(style["samples"].expand(x.shape[0], *style["samples"].shape[1:]))
        noise = style_noise(x.shape, seed, 0, x.device, x.dtype)
        x_style = base.model_sampling.noise_scaling(sigma, noise.clone(), latent.clone())
        cache = {}

        def patched(record):
            options = comfy.model_patcher.create_model_options_clone(mo)
            attn1 = options.setdefault("transformer_options", {}).setdefault("patches_replace", {}).setdefault(
                "attn1", {})
            for layer in layers:
                key = (layer.group, layer.index, layer.sub)

                def replace(q, k, v, extra, key=key):
                    if record:
                        cache[key] = (k, v)
                        return attention(q, k, v, extra["n_heads"])
                    return attention(q, *cache[key], extra["n_heads"])
                attn1[key] = replace
            return options
        comfy.samplers.calc_cond_batch(args["model"], [args["uncond"]], x_style, sigma, patched(True))
        (d_style,) = comfy.samplers.calc_cond_batch(args["model"], [args["uncond"]], x, sigma, patched(False))
        return args["denoised"] + scale * (d_style - args["uncond_denoised"])
    ref = model.clone()
    ref.set_model_sampler_post_cfg_function(post_cfg, disable_cfg1_optimization=True)
    return ref


@pytest.mark.parametrize("family,layers", [("sd15", ""), ("sd15", "middle, input 1"), ("sdxl", "")])
@pytest.mark.parametrize("cfg", [4.0, 1.0])
def test_spg_equals_the_two_pass_reference_with_recorded_and_injected_kv(family, layers, cfg):
    model = tm.make_model(family)
    style = style_for(family)
    names = layers or ", ".join(layer.name for layer in layer_map(model).layers[-6:])
    ours = sample(spg(model, family, 2.5, layers, style), family, seeds=(0, 1), cfg=cfg, steps=1)
    expected = sample(reference(model, family, style, 2.5, names, 0), family, seeds=(0, 1), cfg=cfg, steps=1)
    plain = sample(model, family, seeds=(0, 1), cfg=cfg, steps=1)
    assert_differs(ours, plain)
    assert_close(ours, expected)


@pytest.mark.parametrize("family", cases("SPG", tm.supporting("SPG")))
def test_spg_changes_the_output_at_four_evaluations_in_one_call_per_step(family):
    model = tm.make_model(family)
    plain = sample(model, family)
    counted, counter = tm.counted(spg(model, family))
    out = sample(counted, family)
    assert torch.isfinite(out).all()
    assert_differs(out, plain)
    assert counter.calls == 3 and counter.samples == 4 * 3


def test_spg_keeps_the_uncond_at_cfg_1():
    counted, counter = tm.counted(spg(tm.make_model("flux"), "flux"))
    sample(counted, "flux", cfg=1.0)
    assert counter.calls == 3 and counter.samples == 4 * 3


@pytest.mark.parametrize("family", ("sdxl", "flux"))
def test_spg_scale_zero_is_plain_cfg_at_two_evaluations(family):
    model = tm.make_model(family)
    counted, counter = tm.counted(spg(model, family, 0.0))
    assert_close(sample(counted, family), sample(model, family))
    assert counter.samples == 2 * 3


@pytest.mark.parametrize("family", ("sd15", "sdxl", "flux", "sd3", "wan21", "lumina2", "qwen_image"))
def test_spg_batch_of_two_equals_two_single_runs_and_is_deterministic(family):
    model = spg(tm.make_model(family), family)
    both = sample(model, family, seeds=(5, 6), seed=5)
    assert torch.equal(both, sample(model, family, seeds=(5, 6), seed=5))
    for i, seed in enumerate((5, 6)):
        assert_close(both[i:i + 1], sample(model, family, seeds=(seed,), seed=5))


@pytest.mark.parametrize("family", ("sd15", "sdxl", "flux", "sd3", "wan21", "chroma"))
def test_spg_fp16_stays_finite(family):
    model = tm.make_model(family, dtype=torch.float16)
    assert torch.isfinite(sample(spg(model, family), family)).all()


@pytest.mark.parametrize("family", ("sd15", "flux", "lumina2"))
def test_spg_split_into_one_call_per_cond_and_run_on_its_own_equal_the_batched_call(family):
    """ComfyUI splits the call when memory is short (the reference runs first and leaves its K/V); a foreign batch
    function that bypasses our wrapper makes SPG run its two conds in a call of their own."""
    model = tm.make_model(family)
    batched = sample(spg(model, family), family)
    split = model.clone()
    split.model.memory_required = lambda *args, **kwargs: float("inf")
    try:
        counted, counter = tm.counted(spg(split, family))
        assert_close(sample(counted, family), batched)
        assert counter.calls == 4 * 3
    finally:
        del split.model.memory_required
    foreign = model.clone()
    foreign.set_model_sampler_calc_cond_batch_function(
        lambda args: comfy.samplers._calc_cond_batch(args["model"], args["conds"], args["input"], args["sigma"],
                                                     args["model_options"]))
    counted, counter = tm.counted(spg(foreign, family))
    assert_close(sample(counted, family), batched)
    assert counter.calls == 2 * 3 and counter.samples == 4 * 3


def test_spg_stacks_with_pag_and_scfg_in_one_call_and_with_a_foreign_override():
    model = tm.make_model("sd15")
    counted, counter = tm.counted(PAG.execute(SCFG.execute(spg(model, "sd15"), 0.8, 3.0, 15.0, "").result[0],
                                              2.0, "").result[0])
    assert torch.isfinite(sample(counted, "sd15")).all()
    assert counter.calls == 3 and counter.samples == 5 * 3
    flux = tm.make_model("flux")
    calls = []

    def foreign_override(func, *args, **kwargs):
        calls.append(1)
        return func(*args, **kwargs)
    foreign = flux.clone()
    foreign.model_options["transformer_options"]["optimized_attention_override"] = foreign_override
    assert_close(sample(spg(foreign, "flux"), "flux"), sample(spg(flux, "flux"), "flux"))
    assert calls


def test_a_style_latent_of_another_size_is_resized_and_frames_are_repeated():
    model = tm.make_model("sd15")
    small = {"samples": torch.randn(1, 4, 4, 6)}
    assert torch.isfinite(sample(spg(model, "sd15", style=small), "sd15")).all()
    wan = tm.make_model("wan21")
    one_frame = {"samples": torch.randn(1, 16, 1, 8, 8)}
    assert torch.isfinite(sample(spg(wan, "wan21", style=one_frame), "wan21")).all()


@pytest.mark.parametrize("family,expected", [
    ("sd15", "input 3:0, middle 0:0, output 0:0, output 1:0, output 2:0, output 3:0"),
    ("flux", "double 0, double 1, single 0, single 1")])
def test_default_layers_are_the_last_six_attention_layers(family, expected):
    from guidance_zoo.nodes.spg import default_layers
    assert default_layers(layer_map(tm.make_model(family))) == expected


@pytest.mark.parametrize("kwargs,message", [
    (dict(spg_scale=float("nan")), r"'spg_scale' must be a finite number"),
    (dict(layers="middle 7"), r"layer 'middle 7' does not exist"),
    (dict(style_latent={"samples": torch.randn(1, 16, 8, 8)}), r"'style_latent' has 16 channels but this model's "
                                                              r"latents have 4"),
    (dict(style_latent={"samples": torch.full((1, 4, 8, 8), float("nan"))}), r"'style_latent' contains NaN"),
    (dict(style_latent={}), r"'style_latent' must be a LATENT"),
])
def test_spg_rejects_bad_input_naming_the_node(kwargs, message):
    inputs = {"style_latent": style_for("sd15"), "spg_scale": 3.0, "layers": "", **kwargs}
    with pytest.raises(NodeInputError, match=rf"SPG \(Guidance Zoo\): {message}"):
        SPG.execute(tm.make_model("sd15"), **inputs)


def test_a_style_batch_that_fits_neither_one_nor_the_batch_is_a_clear_error():
    model = spg(tm.make_model("sd15"), "sd15", style={"samples": torch.randn(3, 4, 8, 8)})
    with pytest.raises(ValueError, match=r"SPG \(Guidance Zoo\): the style latent holds 3 images"):
        sample(model, "sd15", seeds=(0, 1))
