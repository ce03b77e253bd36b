"""PAG through the hook layer on every family: core parity on UNets, effect on DiTs, layers, NFEs, batch, stacking."""
import time

import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from tiny_models import assert_close, assert_differs, max_diff
from foreign_patches import has_block_patches, with_foreign_patches
from support_matrix import cases
import comfy.patcher_extension
from comfy_extras.nodes_pag import PerturbedAttentionGuidance as CorePAG

from guidance_zoo.attention_patches.hook import PerturbedPass
from guidance_zoo.attention_patches.layer_spec import LayerItem, parse_spec
from guidance_zoo.attention_patches.families import layer_map
from guidance_zoo.attention_patches.families.unet import UNET
from guidance_zoo.attention_patches.layers import Layer, LayerMap
from guidance_zoo.attention_patches.pag import pag_perturbation
from guidance_zoo.guiders.extra_pass import ExtraCondPass
from guidance_zoo.guiders.perturbed_guidance import PerturbedGuidancePostCFG
from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.pag import PAG

SAMPLE = {"ksampler": tm.ksample, "guider": tm.guider_sample}


def pag(model, scale=3.0, layers=""):
    return PAG.execute(model, scale, layers).result[0]


def with_pass(model, perturbed_pass):
    patched = model.clone()
    extra_pass = ExtraCondPass(perturbed_pass)
    extra_pass.install(patched)
    patched.set_model_sampler_post_cfg_function(PerturbedGuidancePostCFG(extra_pass, 3.0))
    return patched


@pytest.mark.parametrize("path", list(SAMPLE))
@pytest.mark.parametrize("family", cases("PAG", tm.UNETS))
@pytest.mark.parametrize("cfg", [1.0, 4.0])
def test_pag_equals_core_pag_on_unets(family, path, cfg):
    model = tm.make_model(family)
    core = SAMPLE[path](CorePAG.execute(model, 3.0).result[0], family, cfg=cfg)
    ours = SAMPLE[path](pag(model, 3.0, "middle"), family, cfg=cfg)
    assert max_diff(ours, SAMPLE[path](model, family, cfg=cfg)) > 1e-3
    assert_close(ours, core)


@pytest.mark.parametrize("family", cases("PAG", tm.supporting("PAG", tm.DITS)))
def test_pag_changes_the_output_on_every_dit_where_core_pag_does_nothing(family):
    model = tm.make_model(family)
    plain = tm.ksample(model, family, cfg=4.0)
    assert_close(tm.ksample(CorePAG.execute(model, 3.0).result[0], family, cfg=4.0), plain)
    ours = tm.ksample(pag(model), family, cfg=4.0)
    assert torch.isfinite(ours).all()
    assert_differs(ours, plain)


@pytest.mark.parametrize("family", tm.supporting("PAG", tm.DITS))
def test_every_layer_of_every_dit_is_reached_and_distinct(family):
    model = tm.make_model(family)
    lmap = layer_map(model)
    outs = [tm.ksample(pag(model, 3.0, layer.name), family, cfg=1.0, steps=2) for layer in lmap.layers]
    for i in range(len(outs)):
        for j in range(i + 1, len(outs)):
            assert max_diff(outs[i], outs[j]) > 1e-6, (lmap.layers[i].name, lmap.layers[j].name)


def test_pag_scale_zero_is_free_and_a_no_op():
    model = tm.make_model("flux")
    counted, counter = tm.counted(pag(model, 0.0))
    assert_close(tm.ksample(counted, "flux", cfg=4.0), tm.ksample(model, "flux", cfg=4.0))
    assert counter.samples == 2 * 3


@pytest.mark.parametrize("family", ("sd15", "flux", "wan21", "lumina2"))
@pytest.mark.parametrize("cfg,per_step", [(4.0, 3), (1.0, 2)])
def test_pag_costs_three_evaluations_per_step_with_cfg_and_two_without_in_one_batched_call(family, cfg, per_step):
    counted, counter = tm.counted(pag(tm.make_model(family)))
    tm.ksample(counted, family, cfg=cfg, steps=3)
    assert counter.samples == per_step * 3
    assert counter.calls == 3


def test_pag_falls_back_to_its_own_pass_when_the_step_was_not_batched():
    """A foreign sampler_calc_cond_batch_function that bypasses calc_cond_batch: PAG still applies, at one more call."""
    import comfy.samplers
    model = tm.make_model("flux")
    reference = tm.ksample(pag(model), "flux", cfg=4.0)
    foreign = model.clone()
    foreign.set_model_sampler_calc_cond_batch_function(
        lambda args: comfy.samplers._calc_cond_batch(args["model"], args["conds"], args["input"], args["sigma"],
                                                     args["model_options"]))
    counted, counter = tm.counted(pag(foreign))
    assert_close(tm.ksample(counted, "flux", cfg=4.0), reference)
    assert counter.samples == 3 * 3 and counter.calls == 2 * 3


@pytest.mark.parametrize("family", ("sd15", "sdxl", "flux", "sd3", "wan21", "lumina2", "qwen_image"))
def test_pag_batch_of_two_equals_two_single_runs(family):
    model = pag(tm.make_model(family))
    tm.assert_batch_equals_single_runs(model, family, seeds=(5, 6), cfg=4.0)


@pytest.mark.parametrize("family", ("sd15", "sdxl", "flux", "sd3", "wan21", "chroma"))
def test_pag_fp16_stays_finite(family):
    model = tm.make_model(family, dtype=torch.float16)
    assert model.model.get_dtype() == torch.float16
    assert torch.isfinite(tm.ksample(pag(model), family, cfg=4.0)).all()


@pytest.mark.parametrize("family", ("flux", "sd3", "wan21", "lumina2"))
def test_pag_chains_a_foreign_attention_override_and_block_patch(family):
    """Pass-through foreign patches still run in our pass and leave our result unchanged."""
    model = tm.make_model(family)
    reference = tm.ksample(pag(model), family, cfg=4.0)
    blocks = has_block_patches(model)
    foreign, calls = with_foreign_patches(model, block=blocks)
    out = tm.ksample(pag(foreign), family, cfg=4.0)
    assert_close(out, reference)
    assert calls["override"] > 0 and (not blocks or calls["block"] > 0)


def test_pag_keeps_a_foreign_attn1_replace_for_the_rows_it_does_not_perturb():
    model = tm.make_model("sd15")
    seen = []

    def foreign_attn1(q, k, v, extra_options):
        seen.append(q.shape[0])
        return torch.nn.functional.scaled_dot_product_attention(
            *(t.view(t.shape[0], -1, extra_options["n_heads"], t.shape[-1] // extra_options["n_heads"]).transpose(1, 2)
              for t in (q, k, v))).transpose(1, 2).reshape(q.shape)
    foreign = model.clone()
    foreign.set_model_attn1_replace(foreign_attn1, "middle", 0)
    out = tm.ksample(pag(foreign, 3.0, "middle"), "sd15", cfg=4.0)
    assert_close(out, tm.ksample(pag(model, 3.0, "middle"), "sd15", cfg=4.0))
    assert seen and all(rows == 3 for rows in seen)


@pytest.mark.parametrize("spec,message", [
    ("output 99", r"PAG \(Guidance Zoo\): layer 'output 99' does not exist in this SD15 model; it has: input"),
    ("double 0", r"PAG \(Guidance Zoo\): unknown layer group 'double' for SD15"),
    ("middle ,, %", r"PAG \(Guidance Zoo\): cannot read layer '%'"),
])
def test_pag_rejects_unknown_layers_naming_the_node(spec, message):
    with pytest.raises(NodeInputError, match=message):
        pag(tm.make_model("sd15"), 3.0, spec)


@pytest.mark.parametrize("spec,message", [
    ("middle" + " " * 99_990 + "!", r"PAG \(Guidance Zoo\): the layer list is 99997 characters long; the most is 2000"),
    ("middle" + " " * 1_990 + "!", r"PAG \(Guidance Zoo\): cannot read layer 'middle {71}\.\.\.' \(1997 characters\)"),
    ("x" * 1_999, r"PAG \(Guidance Zoo\): unknown layer group 'x{77}\.\.\.' \(1999 characters\) for SD15"),
    ("middle " + "9" * 1_990, r"layer 'middle 9{70}\.\.\.' \(1997 characters\) does not exist in this SD15"),
])
def test_hostile_layer_specs_are_rejected_at_once_quoting_at_most_80_characters(spec, message):
    model = tm.make_model("sd15")
    started = time.perf_counter()
    with pytest.raises(NodeInputError, match=message) as error:
        pag(model, 3.0, spec)
    assert time.perf_counter() - started < 5.0
    assert len(str(error.value)) < 300


def test_layer_spec_grammar_is_read_in_one_pass():
    lmap = LayerMap(UNET, "SDXL", [Layer("input", i, t) for i in (4, 5) for t in range(3)], "input 4")
    assert [layer.name for layer in lmap.parse(" INPUT 5 : 1 - 2 ,input 4:0,,input 4 - 4 :2")] == [
        "input 5:1", "input 5:2", "input 4:0", "input 4:2"]
    assert len(lmap.parse("input:1")) == 2 and len(lmap.parse("input")) == 6
    for bad in ("input 4-", "input 4:", "input -4", "input 4 5", "input 4:1-", "4", "input_4!"):
        with pytest.raises(ValueError, match="cannot read layer"):
            lmap.parse(bad)
    items = parse_spec(", ".join(["input 4-5:0-2"] * 130), "input 4")
    assert len(items) == 130 and items[-1] == LayerItem("input 4-5:0-2", "input", 4, 5, 0, 2)


@pytest.mark.parametrize("scale", [float("nan"), -1.0, 1000.0])
def test_pag_rejects_bad_scale(scale):
    with pytest.raises(NodeInputError, match=r"PAG \(Guidance Zoo\): 'scale'"):
        pag(tm.make_model("flux"), scale)


def test_a_pass_that_reaches_no_layer_raises_instead_of_doing_nothing():
    model = tm.make_model("flux")
    lmap = layer_map(model)
    lmap.family = type("NoSuchBlocks", (type(lmap.family),),
                       {"dit_keys": {"double": "no_such_block", "single": "no_such_block"}})()
    patched = with_pass(model, PerturbedPass(lmap, lmap.parse("double 0"), pag_perturbation, "PAG (Guidance Zoo)"))
    with pytest.raises(RuntimeError, match=r"PAG \(Guidance Zoo\): the perturbation reached none of its layers"):
        tm.ksample(patched, "flux", cfg=4.0)


@pytest.mark.parametrize("family,expected", [
    ("sd15", "middle"), ("sdxl", "middle"), ("flux", "double 1"), ("flux2", "double 1"), ("chroma", "double 1"),
    ("sd3", "block 1"), ("qwen_image", "block 1"), ("lumina2", "block 1"), ("wan21", "block 1")])
def test_default_layers_per_family(family, expected):
    lmap = layer_map(tm.make_model(family))
    assert lmap.default == expected
    assert lmap.parse("")


def test_layer_specs_select_ranges_and_transformer_indices():
    lmap = layer_map(tm.make_model("sdxl"))
    assert [layer.name for layer in lmap.layers] == ["input 3:0", "middle 0:0", "output 0:0", "output 1:0"]
    chosen = lmap.parse("output 0-1, middle")
    assert [layer.name for layer in chosen] == ["output 0:0", "output 1:0", "middle 0:0"]
    deep = LayerMap(UNET, "SDXL", [Layer("middle", 0, t) for t in range(10)], "middle")
    assert [layer.sub for layer in deep.parse("middle 0:2-4")] == [2, 3, 4]
    assert len(deep.parse("middle")) == 10


@pytest.mark.parametrize("family,joint,tokens", [
    ("flux", True, 16), ("flux2", True, 16), ("chroma", True, 16), ("sd3", True, 16), ("qwen_image", True, 16),
    ("lumina2", True, 16), ("wan21", False, 32)])
def test_joint_attention_calls_know_their_text_tokens(family, joint, tokens):
    """Every reached layer sees image tokens plus (on joint attention) exactly the text tokens, text first."""
    model = tm.make_model(family)
    lmap = layer_map(model)
    seen = []

    def record(call):
        seen.append((call.layer.name, call.joint, call.text_len, call.q.shape[2]))
        return pag_perturbation(call)
    patched = with_pass(model, PerturbedPass(lmap, lmap.layers, record, "test"))
    tm.ksample(patched, family, cfg=1.0, steps=1)
    assert sorted({name for name, *_ in seen}) == sorted(layer.name for layer in lmap.layers)
    for _name, is_joint, text_len, n in seen:
        assert is_joint == joint
        assert (text_len >= 7 and n == tokens + text_len) if joint else (text_len == 0 and n == tokens)


def test_a_wrapper_key_is_not_left_on_the_model():
    model = pag(tm.make_model("lumina2"))
    tm.ksample(model, "lumina2", cfg=4.0)
    wrappers = model.model_options["transformer_options"].get("wrappers", {})
    assert not comfy.patcher_extension.get_all_wrappers(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL,
                                                         {"wrappers": wrappers})


def test_two_stacked_pags_batch_into_one_call_and_equal_their_separate_passes():
    import comfy.samplers
    model = tm.make_model("flux")
    stacked = pag(pag(model, 2.0, "double 0"), 3.0, "single 1")
    counted, counter = tm.counted(stacked)
    batched = tm.ksample(counted, "flux", cfg=4.0)
    assert counter.calls == 3 and counter.samples == 4 * 3
    unbatched = model.clone()
    unbatched.set_model_sampler_calc_cond_batch_function(
        lambda args: comfy.samplers._calc_cond_batch(args["model"], args["conds"], args["input"], args["sigma"],
                                                     args["model_options"]))
    assert_close(batched, tm.ksample(pag(pag(unbatched, 2.0, "double 0"), 3.0, "single 1"), "flux", cfg=4.0))


@pytest.mark.parametrize("family", ("sd15", "sd3"))
def test_pag_after_apg_uses_the_models_own_cond_prediction(family):
    """One Euler step returns the denoised prediction, so APG + PAG must equal D_apg + (PAG at cfg 1 - D_c)."""
    from guidance_zoo.nodes.apg import APG
    model = tm.make_model(family)
    apg_model = APG.execute(model, 0.0, 2.0, 0.0).result[0]
    stacked = tm.ksample(pag(apg_model), family, cfg=6.0, steps=1)
    d_apg = tm.ksample(apg_model, family, cfg=6.0, steps=1)
    d_cond = tm.ksample(model, family, cfg=1.0, steps=1)
    pag_alone = tm.ksample(pag(model), family, cfg=1.0, steps=1)
    assert_close(stacked, d_apg + (pag_alone - d_cond))


def test_grouped_kv_heads_are_expanded_for_the_perturbation():
    """Newer ComfyUI passes Lumina2-style grouped k/v heads unexpanded (enable_gqa); the hook expands them."""
    from guidance_zoo.attention_patches.tokens import to_heads_first
    k = torch.randn(2, 5, 1 * 4)
    expanded = to_heads_first(k, 4, False, 2)
    assert expanded.shape == (2, 2, 5, 4)
    torch.testing.assert_close(expanded[:, 0], expanded[:, 1])


def test_padded_lumina2_image_tokens_leave_out_the_padding():
    """NextDiT with pad_tokens_multiple pads the image tokens too: a perturbation's image slice holds the 16 image
    tokens only, not the padding tokens after them."""
    patcher = tm.make_model("lumina2", pad_tokens_multiple=12)
    lmap = layer_map(patcher)
    seen = []

    def record(call):
        seen.append((call.text_len, call.image, call.q.shape[2]))
        return pag_perturbation(call)
    tm.ksample(with_pass(patcher, PerturbedPass(lmap, lmap.layers, record, "test")), "lumina2", cfg=1.0, steps=1)
    assert seen
    for text_len, image, n in seen:
        assert text_len == 12 and image == slice(12, 28) and n == 36
