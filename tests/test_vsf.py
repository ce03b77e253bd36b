"""VSF (arXiv 2508.10931) through the negative-context hook: kernel parity with the official attention masks on fixed
tensors, effect on the families it fits, refusal elsewhere, neutral settings, batch, video, fp16, cost, stacking."""
import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from tiny_models import assert_close, assert_differs
from foreign_patches import with_foreign_patches
from support_matrix import cases

from guidance_zoo.attention_patches.families import layer_map
from guidance_zoo.attention_patches.negative_call import CALL_KEY, CallState
from guidance_zoo.attention_patches.negative_context import NegativeContext
from guidance_zoo.attention_patches.negative_cross import EXTENDED
from guidance_zoo.attention_patches.vsf import vsf_cross_rule, vsf_joint_rule
from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.pag import PAG
from guidance_zoo.nodes.vsf import VSF

WORKS = tm.supporting("VSF")
REFUSES = tm.refusing("VSF")


def vsf_negative(family, seed=7, tokens=5):
    return tm.make_conds(family, seed=seed, tokens=tokens)[0]


def vsf(model, negative, scale=3.0, offset=0.08):
    return VSF.execute(model, negative, scale, offset).result[0]


def masked_attention(q, k, v, heads, mask):
    """q (N, C), k/v (M, C), additive mask (N, M) -> (N, C), per head, in float64."""
    d = q.shape[-1] // heads
    out = []
    for h in range(heads):
        qh, kh, vh = (t[:, h * d:(h + 1) * d].double() for t in (q, k, v))
        out.append(torch.softmax(qh @ kh.T / d ** 0.5 + mask.double(), dim=-1) @ vh)
    return torch.cat(out, dim=-1)


def test_cross_attention_kernel_equals_the_official_processor():
    """Wan/UNet cross-attention on fixed tensors: values of the negative tokens times -scale, logits - offset."""
    g = torch.Generator().manual_seed(0)
    heads, n, length, added, c = 2, 6, 4, 3, 8
    q, k, v = (torch.randn(2, n, c, generator=g), torch.randn(2, length + added, c, generator=g),
               torch.randn(2, length + added, c, generator=g))
    hook = NegativeContext(layer_map(tm.make_model("sd15")), [], "test", vsf_cross_rule(2.5, 0.3), None)
    call = CallState({"P"}, "N", 0, torch.zeros(1, added, c), added)
    options = {"n_heads": heads, "cond_or_uncond": [0, 1], "uuids": ["P", "U"], EXTENDED: added}
    out = hook._attn2_replace(call, None)(q, k, v, options)
    flipped = v[0].clone()
    flipped[length:] *= -2.5
    mask = torch.zeros(n, length + added)
    mask[:, length:] = -0.3
    torch.testing.assert_close(out[0].double(), masked_attention(q[0], k[0], flipped, heads, mask),
                               rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[1].double(), masked_attention(q[1], k[1, :length], v[1, :length], heads,
                                                                 torch.zeros(n, length)), rtol=1e-5, atol=1e-5)


def test_joint_attention_kernel_equals_the_official_sd3_masks():
    """SD3 layout on fixed tensors, built like the official pipeline: sequence [P, N1, N2, image], keys plus a flipped
    copy of N2 appended, and its four mask rules; here our text comes first (ComfyUI's SD3 order)."""
    g = torch.Generator().manual_seed(2)
    heads, d, p, neg, image_len = 2, 4, 3, 2, 5
    text_len = p + 2 * neg
    n = text_len + image_len
    q, k, v = (torch.randn(2, heads, n, d, generator=g) for _ in range(3))
    scale, offset = 3.0, 0.08
    hook = NegativeContext(layer_map(tm.make_model("sd3")), [], "test", None, vsf_joint_rule(scale, offset),
                           inline_copies=2)
    call = CallState({"P"}, "N", 0, torch.zeros(1, neg, 8), neg, text_len=text_len, current="block")
    options = {CALL_KEY: {id(hook): call}, "cond_or_uncond": [0, 1], "uuids": ["P", "U"]}

    def plain(q, k, v, heads, skip_reshape=False, mask=None, transformer_options=None, **kwargs):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v).transpose(1, 2).reshape(q.shape[0], n, -1)
    out = hook._joint_override(call, None)(plain, q, k, v, heads, skip_reshape=True, transformer_options=options)

    fq, fk, fv = (t.transpose(1, 2).reshape(2, n, heads * d) for t in (q, k, v))
    n2 = list(range(p + neg, text_len))
    keys = torch.cat([fk[0], fk[0][n2]])
    values = torch.cat([fv[0], -scale * fv[0][n2]])
    is_text, is_image = torch.arange(n) < text_len, torch.arange(n) >= text_len
    is_n2 = (torch.arange(n) >= p + neg) & is_text
    mask = torch.zeros(n, n + neg)
    mask[is_text, n:] = float("-inf")                                  # prompts cannot see the flipped copy
    cols_n2 = torch.zeros(n + neg, dtype=torch.bool)
    cols_n2[n2] = True
    mask[(~is_n2).unsqueeze(1) & cols_n2.unsqueeze(0)] = float("-inf")  # image, P, N1 cannot see N2
    cols_pn1 = torch.zeros(n + neg, dtype=torch.bool)
    cols_pn1[:p + neg] = True
    mask[is_n2.unsqueeze(1) & cols_pn1.unsqueeze(0)] = float("-inf")   # N2 cannot see P, N1
    mask[is_image, n:] -= offset                                       # image sees less of -N2
    expected = masked_attention(fq[0], keys, values, heads, mask)
    torch.testing.assert_close(out[0].double(), expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out[1].double(), masked_attention(fq[1], fk[1], fv[1], heads, torch.zeros(n, n)),
                               rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("cfg", [1.0, 4.0])
@pytest.mark.parametrize("family", cases("VSF", WORKS, REFUSES))
def test_vsf_changes_the_output_where_it_fits_and_refuses_elsewhere(family, cfg):
    model = tm.make_model(family)
    if family in REFUSES:
        with pytest.raises(NodeInputError, match=r"VSF \(Guidance Zoo\): \w+ models are not supported; VSF runs on"):
            vsf(model, vsf_negative(family))
        return
    plain = tm.ksample(model, family, cfg=cfg)
    out = tm.ksample(vsf(model, vsf_negative(family)), family, cfg=cfg)
    assert torch.isfinite(out).all()
    assert_differs(out, plain)


@pytest.mark.parametrize("family", WORKS)
def test_scale_zero_is_the_plain_model(family):
    model = tm.make_model(family)
    assert torch.equal(tm.ksample(vsf(model, vsf_negative(family), scale=0.0), family, cfg=4.0),
                       tm.ksample(model, family, cfg=4.0))


@pytest.mark.parametrize("family", ("sd15", "wan21"))
def test_hidden_flipped_tokens_give_the_plain_model(family):
    """With the flipped tokens' logits lowered by a huge offset, cross-attention sees only the prompt again."""
    model = tm.make_model(family)
    hooked = model.clone()
    NegativeContext(layer_map(model), vsf_negative(family), "test", vsf_cross_rule(3.0, 1e4), None).install(hooked)
    assert_close(tm.ksample(hooked, family, cfg=1.0), tm.ksample(model, family, cfg=1.0), 1e-5)


def test_zero_padding_of_the_negative_is_dropped():
    """Wan's umT5 pads prompts with zero tokens; the official code encodes the negative unpadded."""
    model = tm.make_model("wan21")
    negative = vsf_negative("wan21")
    padded = [[torch.cat([negative[0][0], torch.zeros(1, 9, tm.CTX)], dim=1), negative[0][1]]]
    assert_close(tm.ksample(vsf(model, padded), "wan21", cfg=1.0), tm.ksample(vsf(model, negative), "wan21", cfg=1.0))


@pytest.mark.parametrize("family", ("sd15", "sd3", "wan21"))
def test_batch_of_two_with_a_negative_each_equals_two_single_runs(family):
    model = tm.make_model(family)
    first, second = vsf_negative(family, seed=7), vsf_negative(family, seed=8)
    both = [[torch.cat([first[0][0], second[0][0]]), first[0][1]]]
    batched = tm.ksample(vsf(model, both), family, cfg=1.0, seeds=(5, 6))
    for i, (seed, negative) in enumerate(((5, first), (6, second))):
        assert_close(batched[i:i + 1], tm.ksample(vsf(model, negative), family, cfg=1.0, seeds=(seed,)))


@pytest.mark.parametrize("family", ("sd15", "sd3", "wan21"))
def test_fp16_finite_and_deterministic(family):
    model = vsf(tm.make_model(family, dtype=torch.float16), vsf_negative(family))
    first = tm.ksample(model, family, cfg=1.0)
    assert torch.isfinite(first).all()
    assert torch.equal(first, tm.ksample(model, family, cfg=1.0))


@pytest.mark.parametrize("family,cfg,per_step,calls", [
    ("sd15", 1.0, 1, 1), ("sd15", 4.0, 2, 1), ("wan21", 1.0, 1, 1), ("wan21", 4.0, 2, 1),
    ("sd3", 1.0, 1, 1), ("sd3", 4.0, 2, 2)])
def test_evaluations_per_step(family, cfg, per_step, calls):
    """SD3 with CFG: the positive text is longer than the uncond's, so ComfyUI runs them in two calls."""
    counted, counter = tm.counted(vsf(tm.make_model(family), vsf_negative(family)))
    tm.ksample(counted, family, cfg=cfg, steps=3)
    assert counter.samples == per_step * 3
    assert counter.calls == calls * 3


@pytest.mark.parametrize("family", ("sd3", "wan21"))
def test_stacks_with_pag_and_a_foreign_patch(family):
    model = tm.make_model(family)
    negative = vsf_negative(family)
    reference = tm.ksample(vsf(model, negative), family, cfg=1.0)
    foreign, calls = with_foreign_patches(model)
    assert_close(tm.ksample(vsf(foreign, negative), family, cfg=1.0), reference)
    assert calls["override"] > 0 and calls["block"] > 0
    counted, counter = tm.counted(PAG.execute(vsf(model, negative), 3.0, "").result[0])
    stacked = tm.ksample(counted, family, cfg=1.0)
    assert torch.isfinite(stacked).all() and float((stacked - reference).abs().max()) > 1e-4
    assert counter.samples == 2 * 3


@pytest.mark.parametrize("negative", [None, [], [[None, {}]]])
def test_missing_negative_is_an_error_naming_the_node(negative):
    with pytest.raises(NodeInputError, match=r"VSF \(Guidance Zoo\): the 'negative' input is missing or empty"):
        vsf(tm.make_model("sd3"), negative)


@pytest.mark.parametrize("name,kwargs", [("scale", {"scale": float("nan")}), ("scale", {"scale": -1.0}),
                                         ("offset", {"offset": float("inf")})])
def test_bad_numbers_are_errors_naming_the_node(name, kwargs):
    with pytest.raises(NodeInputError, match=rf"VSF \(Guidance Zoo\): '{name}'"):
        vsf(tm.make_model("sd3"), vsf_negative("sd3"), **kwargs)


def test_joint_kernel_memory_grows_linearly_in_tokens():
    """Three attentions over key subsets instead of the official (N, N + neg) mask."""
    from memory_probe import growth_exponent
    from guidance_zoo.core.vsf import vsf_joint_attention

    def run(n):
        q, k, v = (torch.randn(1, 2, n, 16, generator=torch.Generator().manual_seed(i)) for i in range(3))
        return vsf_joint_attention(q, k, v, slice(64, n), slice(0, 40), slice(40, 64), 3.0, 0.08)
    assert growth_exponent(run) < 1.2
