"""NAG (arXiv 2505.21179) through the negative-context hook: kernel parity with the paper's formula on fixed tensors,
effect on every family it supports, neutral setting, batch, video, fp16, determinism, cost, stacking, bad input."""
import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from tiny_models import assert_close, assert_differs, max_diff
from foreign_patches import with_foreign_patches
from support_matrix import cases

from guidance_zoo.attention_patches.families import layer_map
from guidance_zoo.attention_patches.nag import nag_cross_rule, nag_joint_rule
from guidance_zoo.attention_patches.negative_call import CALL_KEY, CallState
from guidance_zoo.attention_patches.negative_context import NegativeContext
from guidance_zoo.attention_patches.negative_cross import EXTENDED
from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.nag import NAG
from guidance_zoo.nodes.pag import PAG

WORKS = tm.supporting("NAG")
JOINT = ("sd3", "flux", "flux2", "chroma", "qwen_image")


def nag_negative(family, seed=7, tokens=5):
    return tm.make_conds(family, seed=seed, tokens=tokens)[0]


def nag(model, negative, scale=5.0, tau=2.5, alpha=0.25, sigma_end=0.0):
    return NAG.execute(model, negative, scale, tau, alpha, sigma_end).result[0]


# -- the paper's formula, written out independently -------------------------------------------------------------
def softmax_attention(q, k, v, heads, bias=None):
    """q (N, C), k/v (M, C) -> (N, C); explicit per-head softmax(q k^T / sqrt(d)) v."""
    d = q.shape[-1] // heads
    out = []
    for h in range(heads):
        qh, kh, vh = (t[:, h * d:(h + 1) * d].double() for t in (q, k, v))
        logits = qh @ kh.T / d ** 0.5
        if bias is not None:
            logits = logits + bias
        out.append(torch.softmax(logits, dim=-1) @ vh)
    return torch.cat(out, dim=-1)


def paper_nag(z_pos, z_neg, phi, tau, alpha):
    guided = phi * z_pos - (phi - 1) * z_neg
    ratio = guided.abs().sum(-1, keepdim=True) / z_pos.abs().sum(-1, keepdim=True)
    normalized = torch.where(ratio > tau, guided * tau / ratio, guided)
    return alpha * normalized + (1 - alpha) * z_pos


def test_cross_attention_kernel_equals_the_papers_formula():
    """UNet attn2 replace on fixed tensors: positive row = NAG(Attn(Q,K+,V+), Attn(Q,K-,V-)), uncond row untouched."""
    g = torch.Generator().manual_seed(0)
    heads, n, length, added, c = 2, 6, 4, 3, 8
    q, k, v = (torch.randn(2, n, c, generator=g), torch.randn(2, length + added, c, generator=g),
               torch.randn(2, length + added, c, generator=g))
    lmap = layer_map(tm.make_model("sd15"))
    hook = NegativeContext(lmap, [], "test", nag_cross_rule(4.0, 1.5, 0.3), None)
    call = CallState({"P"}, "N", 0, torch.zeros(1, added, c), added)
    options = {"n_heads": heads, "cond_or_uncond": [1, 0], "uuids": ["U", "P"], EXTENDED: added}
    out = hook._attn2_replace(call, None)(q, k, v, options)
    z_pos = softmax_attention(q[1], k[1, :length], v[1, :length], heads)
    z_neg = softmax_attention(q[1], k[1, length:], v[1, length:], heads)
    torch.testing.assert_close(out[1].double(), paper_nag(z_pos, z_neg, 4.0, 1.5, 0.3), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[0].double(), softmax_attention(q[0], k[0, :length], v[0, :length], heads),
                               rtol=1e-5, atol=1e-5)
    assert call.hits == 1


@pytest.mark.parametrize("text_first", [True, False])
def test_joint_attention_kernel_equals_the_papers_formula(text_first):
    """Joint attention on fixed tensors, rows [positive, uncond, negative]; the negative's last text token is padding.

    positive: text rows as usual; image rows NAG(Z+, Z-) with Z- over [negative text (real tokens), own image].
    negative: text rows over [its real text, the positive's image]. uncond: untouched.
    """
    g = torch.Generator().manual_seed(1)
    heads, d, text_len, image_len = 2, 4, 3, 5
    n = text_len + image_len
    q, k, v = (torch.randn(3, heads, n, d, generator=g) for _ in range(3))
    lmap = layer_map(tm.make_model("flux"))
    lmap.text_first = text_first
    phi, tau, alpha = 3.0, 2.0, 0.5
    hook = NegativeContext(lmap, [], "test", None, nag_joint_rule(phi, tau, alpha))
    call = CallState({"P"}, "N", 0, torch.zeros(1, text_len, 8), text_len - 1, text_len=text_len,
                     context_len=text_len, current="block")
    options = {CALL_KEY: {id(hook): call}, "cond_or_uncond": [0, 1, 2], "uuids": ["P", "U", "N"]}

    def plain(q, k, v, heads, skip_reshape=False, mask=None, transformer_options=None, **kwargs):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=mask).transpose(1, 2).reshape(
            q.shape[0], q.shape[2], -1)
    out = hook._joint_override(call, None)(plain, q, k, v, heads, skip_reshape=True, transformer_options=options)

    flat = [t.transpose(1, 2).reshape(3, n, heads * d) for t in (q, k, v)]
    text = list(range(text_len)) if text_first else list(range(image_len, n))
    image = list(range(text_len, n)) if text_first else list(range(image_len))
    real_text = text[:-1]
    fq, fk, fv = flat

    def rows(t, row, idx):
        return t[row][idx]
    z_pos = softmax_attention(rows(fq, 0, image), fk[0], fv[0], heads)
    neg_keys = real_text + [n + i for i in image]          # negative row's real text, then the positive's image
    k_mix, v_mix = torch.cat([fk[2], fk[0]]), torch.cat([fv[2], fv[0]])
    z_neg = softmax_attention(rows(fq, 0, image), k_mix[neg_keys], v_mix[neg_keys], heads)
    guided = paper_nag(z_pos, z_neg, phi, tau, alpha)
    neg_text = softmax_attention(rows(fq, 2, text), k_mix[neg_keys], v_mix[neg_keys], heads)
    tol = dict(rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[0][image].double(), guided, **tol)
    torch.testing.assert_close(out[0][text].double(), softmax_attention(rows(fq, 0, text), fk[0], fv[0], heads), **tol)
    torch.testing.assert_close(out[1].double(), softmax_attention(fq[1], fk[1], fv[1], heads), **tol)
    torch.testing.assert_close(out[2][text].double(), neg_text, **tol)
    torch.testing.assert_close(out[2][image].double(), guided, **tol)


def test_padded_lumina2_guides_the_image_tokens_only_not_their_padding():
    """NextDiT with pad_tokens_multiple=12: the joint sequence is 7 text + 5 padding, 16 image + 8 padding tokens. NAG
    guides the 16 image tokens; the positive row's image padding tokens keep their normal attention output."""
    model = tm.make_model("lumina2", pad_tokens_multiple=12)
    rule = nag_joint_rule(5.0, 2.5, 0.25)
    seen = []

    def recording(rows, normal):
        out = rule(rows, normal)
        seen.append((rows.text, rows.image, normal.shape[1], max_diff(out[rows.positive, 12:28],
                                                                      normal[rows.positive, 12:28]),
                     max_diff(out[rows.positive, 28:], normal[rows.positive, 28:])))
        return out
    hooked = model.clone()
    NegativeContext(layer_map(model), nag_negative("lumina2"), "test", None, recording).install(hooked)
    tm.ksample(hooked, "lumina2", cfg=1.0, steps=1)
    assert len(seen) == 2                   # one per joint layer
    for text, image, n, image_change, padding_change in seen:
        assert (text, image, n) == (slice(0, 12), slice(12, 28), 36)
        assert image_change > 1e-3 and padding_change == 0.0


# -- on the models --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cfg", [1.0, 4.0])
@pytest.mark.parametrize("family", cases("NAG", WORKS))
def test_nag_changes_the_output_on_every_family(family, cfg):
    model = tm.make_model(family)
    plain = tm.ksample(model, family, cfg=cfg)
    out = tm.ksample(nag(model, nag_negative(family)), family, cfg=cfg)
    assert torch.isfinite(out).all()
    assert_differs(out, plain)


@pytest.mark.parametrize("family", cases("NAG", [], tm.refusing("NAG")))
def test_nag_refuses_the_families_whose_attention_it_cannot_reach(family):
    with pytest.raises(NodeInputError, match=r"NAG \(Guidance Zoo\): \w+ models are not supported; NAG runs on .+\. "):
        nag(tm.make_model(family), nag_negative(family))


@pytest.mark.parametrize("family", WORKS)
def test_phi_one_is_the_plain_model(family):
    """The node at scale 1 patches nothing (bit-exact); the hook installed with phi = 1 changes nothing either."""
    model = tm.make_model(family)
    plain = tm.ksample(model, family, cfg=4.0)
    assert torch.equal(tm.ksample(nag(model, nag_negative(family), scale=1.0), family, cfg=4.0), plain)
    hooked = model.clone()
    NegativeContext(layer_map(model), nag_negative(family), "test", nag_cross_rule(1.0, 2.5, 0.25),
                    nag_joint_rule(1.0, 2.5, 0.25)).install(hooked)
    assert_close(tm.ksample(hooked, family, cfg=4.0), plain, 1e-5)


@pytest.mark.parametrize("family", ("sd15", "flux", "wan21", "qwen_image"))
def test_uncond_prediction_is_untouched(family):
    seen = {}

    def record(args):
        seen.setdefault("uncond", []).append(args["uncond_denoised"].clone())
        return args["denoised"]
    model = tm.make_model(family)
    plain = model.clone()
    plain.set_model_sampler_post_cfg_function(record)
    tm.ksample(plain, family, cfg=4.0, steps=1)
    reference = seen.pop("uncond")[0]
    patched = nag(model, nag_negative(family))
    patched.set_model_sampler_post_cfg_function(record)
    tm.ksample(patched, family, cfg=4.0, steps=1)
    assert_close(seen["uncond"][0], reference, 1e-5)


@pytest.mark.parametrize("family", ("sd15", "sdxl", "sd3", "flux", "qwen_image", "wan21"))
def test_batch_of_two_with_a_negative_each_equals_two_single_runs(family):
    model = tm.make_model(family)
    first, second = nag_negative(family, seed=7), nag_negative(family, seed=8)
    both = [[torch.cat([first[0][0], second[0][0]]), first[0][1]]]
    batched = tm.ksample(nag(model, both), family, cfg=4.0, seeds=(5, 6))
    for i, (seed, negative) in enumerate(((5, first), (6, second))):
        assert_close(batched[i:i + 1], tm.ksample(nag(model, negative), family, cfg=4.0, seeds=(seed,)))
    shared = tm.ksample(nag(model, first), family, cfg=4.0, seeds=(5, 6))
    assert_close(shared[:1], batched[:1])
    assert float((shared[1:] - batched[1:]).abs().max()) > 1e-4


def test_video_latent_is_five_d_and_guided():
    model = tm.make_model("wan21")
    out = tm.ksample(nag(model, nag_negative("wan21")), "wan21", cfg=1.0)
    assert out.ndim == 5 and torch.isfinite(out).all()


@pytest.mark.parametrize("family", ("sd15", "sdxl", "sd3", "flux", "chroma", "wan21"))
def test_fp16_stays_finite(family):
    model = tm.make_model(family, dtype=torch.float16)
    assert torch.isfinite(tm.ksample(nag(model, nag_negative(family)), family, cfg=4.0)).all()


@pytest.mark.parametrize("family", ("sd15", "flux"))
def test_two_identical_runs_are_identical(family):
    model = nag(tm.make_model(family), nag_negative(family))
    assert torch.equal(tm.ksample(model, family, cfg=4.0), tm.ksample(model, family, cfg=4.0))


@pytest.mark.parametrize("family,cfg,per_step", [
    ("sd15", 1.0, 1), ("sd15", 4.0, 2), ("wan21", 1.0, 1), ("wan21", 4.0, 2),
    ("flux", 1.0, 2), ("flux", 4.0, 3), ("sd3", 1.0, 2), ("qwen_image", 4.0, 3)])
def test_evaluations_per_step_in_one_model_call(family, cfg, per_step):
    counted, counter = tm.counted(nag(tm.make_model(family), nag_negative(family)))
    tm.ksample(counted, family, cfg=cfg, steps=3)
    assert counter.samples == per_step * 3
    assert counter.calls == 3


def test_sigma_end_above_every_sigma_costs_nothing_and_changes_nothing():
    model = tm.make_model("flux")
    counted, counter = tm.counted(nag(model, nag_negative("flux"), sigma_end=2.0))
    assert_close(tm.ksample(counted, "flux", cfg=1.0), tm.ksample(model, "flux", cfg=1.0), 1e-6)
    assert counter.samples == 3


@pytest.mark.parametrize("family", ("flux", "sdxl"))
def test_negative_longer_or_shorter_than_the_prompt(family):
    model = tm.make_model(family)
    for tokens in (3, 12):
        out = tm.ksample(nag(model, nag_negative(family, tokens=tokens)), family, cfg=1.0)
        assert torch.isfinite(out).all()


@pytest.mark.parametrize("family,per_step", [("sd15", 3), ("wan21", 3), ("flux", 4), ("sd3", 4)])
def test_stacks_with_pag_in_either_order(family, per_step):
    """PAG's extra pass of the positive cond is guided by NAG too (same uuids), so PAG's difference isolates its
    perturbation; on joint attention both positive passes borrow the one negative row."""
    model = tm.make_model(family)
    negative = nag_negative(family)
    nag_alone = tm.ksample(nag(model, negative), family, cfg=4.0)
    pag_alone = tm.ksample(PAG.execute(model, 3.0, "").result[0], family, cfg=4.0)
    outs = []
    for stacked in (PAG.execute(nag(model, negative), 3.0, "").result[0],
                    nag(PAG.execute(model, 3.0, "").result[0], negative)):
        counted, counter = tm.counted(stacked)
        outs.append(tm.ksample(counted, family, cfg=4.0))
        assert counter.samples == per_step * 3 and counter.calls == 3
        assert torch.isfinite(outs[-1]).all()
        for alone in (nag_alone, pag_alone):
            assert float((outs[-1] - alone).abs().max()) > 1e-4 * float(alone.abs().max())
    if family in ("sd15", "wan21"):
        assert_close(outs[0], outs[1])     # order-free on cross attention; on joint attention see the README


@pytest.mark.parametrize("family", ("flux", "sd3", "wan21"))
def test_chains_a_foreign_attention_override_and_block_patch(family):
    model = tm.make_model(family)
    negative = nag_negative(family)
    reference = tm.ksample(nag(model, negative), family, cfg=4.0)
    foreign, calls = with_foreign_patches(model)
    assert_close(tm.ksample(nag(foreign, negative), family, cfg=4.0), reference)
    assert calls["override"] > 0 and calls["block"] > 0


def test_chains_a_foreign_attn2_replace():
    model = tm.make_model("sd15")
    negative = nag_negative("sd15")
    seen = []

    def foreign_attn2(q, k, v, extra_options):
        seen.append(k.shape[1])
        heads = extra_options["n_heads"]
        return torch.nn.functional.scaled_dot_product_attention(
            *(t.view(t.shape[0], -1, heads, t.shape[-1] // heads).transpose(1, 2) for t in (q, k, v))
        ).transpose(1, 2).reshape(q.shape)
    foreign = model.clone()
    foreign.set_model_attn2_replace(foreign_attn2, "middle", 0)
    assert_close(tm.ksample(nag(foreign, negative), "sd15", cfg=4.0), tm.ksample(nag(model, negative), "sd15", cfg=4.0))
    assert seen and all(length == 7 for length in seen)


@pytest.mark.parametrize("negative", [None, [], [[None, {}]]])
def test_missing_negative_is_an_error_naming_the_node(negative):
    with pytest.raises(NodeInputError, match=r"NAG \(Guidance Zoo\): the 'negative' input is missing or empty"):
        nag(tm.make_model("flux"), negative)


@pytest.mark.parametrize("name,kwargs", [("scale", {"scale": float("nan")}), ("scale", {"scale": 0.5}),
                                         ("tau", {"tau": 0.0}), ("alpha", {"alpha": 1.5}),
                                         ("sigma_end", {"sigma_end": -1.0})])
def test_bad_numbers_are_errors_naming_the_node(name, kwargs):
    with pytest.raises(NodeInputError, match=rf"NAG \(Guidance Zoo\): '{name}'"):
        nag(tm.make_model("sd15"), nag_negative("sd15"), **kwargs)


@pytest.mark.parametrize("family", WORKS)
def test_a_negative_equal_to_the_prompt_changes_nothing(family):
    """Z- = Z+ when the negative context is the positive one, so the guided output is Z+ (the negative text stream of
    joint attention evolves exactly like the positive one)."""
    model = tm.make_model(family)
    positive, negative = tm.make_conds(family)
    plain = tm.ksample(model, family, cfg=4.0, conds=(positive, negative))
    assert_close(tm.ksample(nag(model, positive), family, cfg=4.0, conds=(positive, negative)), plain, 1e-5)
