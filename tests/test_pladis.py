"""PLADIS: sparse kernels against independent references, and the node on real ComfyUI with tiny models."""
import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from tiny_models import assert_close, assert_differs, max_diff
from foreign_patches import has_block_patches, with_foreign_patches
from memory_probe import growth_exponent
from support_matrix import cases

from guidance_zoo.attention_patches.families import layer_map
from guidance_zoo.attention_patches.cross_attention import install_cross_attention
from guidance_zoo.core.entmax import entmax15, entmax_bisect, sparse_weights, sparsemax
from guidance_zoo.core.pladis import joint_pladis_attention, pladis_attention
from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.pag import PAG
from guidance_zoo.nodes.pladis import PLADIS

JOINT = ("sd3", "flux", "flux2", "chroma", "qwen_image", "lumina2")


def pladis(model, scale=2.0, alpha=1.5, layers=""):
    return PLADIS.execute(model, scale, alpha, layers).result[0]


def threshold_by_bisection(z: torch.Tensor, alpha: float) -> torch.Tensor:
    """Reference alpha-entmax: p = [(alpha - 1) z - tau]_+^(1/(alpha - 1)), tau found by plain bisection in float64."""
    z = z.double() * (alpha - 1)
    low, high = z.amax(-1, keepdim=True) - 1, z.amax(-1, keepdim=True)
    for _ in range(200):
        tau = (low + high) / 2
        over = (z - tau).clamp_min(0).pow(1 / (alpha - 1)).sum(-1, keepdim=True) >= 1
        low, high = torch.where(over, tau, low), torch.where(over, high, tau)
    return (z - low).clamp_min(0).pow(1 / (alpha - 1))


def reference_pladis(q, k, v, scale, lam, alpha):
    scores = (q.double() @ k.double().transpose(-1, -2)) * scale
    weights = lam * threshold_by_bisection(scores, alpha) + (1 - lam) * torch.softmax(scores, -1)
    return (weights @ v.double()).float()


def logits(*shape, seed=0, spread=3.0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * spread


# ---------------------------------------------------------------------------------------------------- kernels

@pytest.mark.parametrize("alpha,kernel", [(2.0, sparsemax), (1.5, entmax15)])
def test_exact_kernels_match_the_bisection_reference_and_are_sparse_distributions(alpha, kernel):
    z = logits(4, 3, 11, 17)
    p = kernel(z)
    torch.testing.assert_close(p.double(), threshold_by_bisection(z, alpha), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(p.sum(-1), torch.ones(p.shape[:-1]))
    assert bool((p >= 0).all()) and float((p == 0).float().mean()) > 0.3
    torch.testing.assert_close(kernel(z + 7.0), p)


def test_sparsemax_is_the_euclidean_projection_onto_the_simplex():
    z = logits(50, 9, seed=3, spread=1.0)
    p = sparsemax(z)
    g = torch.Generator().manual_seed(4)
    for _ in range(20):
        other = torch.softmax(torch.randn(50, 9, generator=g) * 3, -1)
        assert bool(((p - z).norm(dim=-1) <= (other - z).norm(dim=-1) + 1e-6).all())
    torch.testing.assert_close(sparsemax(torch.zeros(2, 5)), torch.full((2, 5), 0.2))


@pytest.mark.parametrize("alpha", [1.5, 2.0, 1.25])
def test_bisection_entmax_agrees_with_the_exact_rules(alpha):
    z = logits(6, 13, seed=5)
    torch.testing.assert_close(entmax_bisect(z, alpha).double(), threshold_by_bisection(z, alpha), atol=1e-5, rtol=1e-5)
    if alpha in (1.5, 2.0):
        torch.testing.assert_close(sparse_weights(z, alpha), entmax_bisect(z, alpha), atol=1e-5, rtol=1e-5)


def test_masked_logits_get_zero_weight():
    z = logits(3, 8, seed=6)
    z[:, 2] = float("-inf")
    for kernel in (sparsemax, entmax15):
        p = kernel(z)
        assert bool(torch.isfinite(p).all()) and bool((p[:, 2] == 0).all())


@pytest.mark.parametrize("alpha", [1.5, 2.0])
@pytest.mark.parametrize("lam", [0.0, 1.0, 2.0])
def test_chunked_pladis_attention_equals_the_full_matrix_formula(alpha, lam):
    g = torch.Generator().manual_seed(7)
    q = torch.randn(2, 3, 13, 8, generator=g)
    k, v = torch.randn(2, 3, 6, 8, generator=g), torch.randn(2, 3, 6, 8, generator=g)
    out = pladis_attention(q * 2, k, v, 0.35, lam, alpha, chunk=5)
    torch.testing.assert_close(out, reference_pladis(q * 2, k, v, 0.35, lam, alpha), atol=1e-5, rtol=1e-5)
    change = pladis_attention(q * 2, k, v, 0.35, lam, alpha, residual_only=True, chunk=4)
    plain = torch.softmax(q * 2 @ k.transpose(-1, -2) * 0.35, -1) @ v
    torch.testing.assert_close(plain + change, out, atol=1e-5, rtol=1e-5)


def reference_joint(q, k, v, scale, lam, alpha, text):
    """Joint rows from the full matrix: image rows' text part = text mass * (lam entmax + (1 - lam) softmax)(S_txt)."""
    scores = (q.double() @ k.double().transpose(-1, -2)) * scale
    weights = torch.softmax(scores, -1)
    image = torch.ones(q.shape[2], dtype=torch.bool)
    image[text] = False
    rows = weights[:, :, image]
    mass = rows[..., text].sum(-1, keepdim=True)
    text_scores = scores[:, :, image][..., text]
    rows[..., text] = mass * (lam * threshold_by_bisection(text_scores, alpha)
                              + (1 - lam) * torch.softmax(text_scores, -1))
    weights[:, :, image] = rows
    return (weights @ v.double()).float()


@pytest.mark.parametrize("text", [slice(0, 5), slice(15, 20)])
@pytest.mark.parametrize("alpha", [1.5, 2.0])
def test_joint_variant_equals_its_full_matrix_formula(text, alpha):
    g = torch.Generator().manual_seed(8)
    q, k, v = (torch.randn(2, 2, 20, 8, generator=g) * (2 if i < 2 else 1) for i in range(3))
    out = joint_pladis_attention(q, k, v, 0.35, 2.0, alpha, text, chunk=6)
    torch.testing.assert_close(out, reference_joint(q, k, v, 0.35, 2.0, alpha, text), atol=1e-5, rtol=1e-5)
    plain = torch.softmax(q @ k.transpose(-1, -2) * 0.35, -1) @ v
    torch.testing.assert_close(out[:, :, text], plain[:, :, text], atol=1e-5, rtol=1e-5)
    change = joint_pladis_attention(q, k, v, 0.35, 2.0, alpha, text, residual_only=True, chunk=7)
    torch.testing.assert_close(plain + change, out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(joint_pladis_attention(q, k, v, 0.35, 0.0, alpha, text), plain, atol=1e-5, rtol=1e-5)


def test_pladis_attention_memory_is_linear_in_tokens_at_a_fixed_chunk():
    def run(n):
        q = torch.randn(1, 2, n, 8)
        return lambda: pladis_attention(q, q, q, 0.35, 2.0, 1.5, chunk=128)

    def full(n):
        q = torch.randn(1, 2, n, 8)
        return lambda: torch.softmax(q @ q.transpose(-1, -2), -1) @ q
    chunked = growth_exponent(lambda n: run(n)(), tokens=(512, 2048))
    assert chunked < 1.1, chunked
    joint = growth_exponent(lambda n: joint_pladis_attention(*(torch.randn(1, 2, n, 8) for _ in range(3)), 0.35, 2.0,
                                                             1.5, slice(0, 77), chunk=128), tokens=(512, 2048))
    assert joint < 1.1, joint
    assert growth_exponent(lambda n: full(n)(), tokens=(512, 2048)) > 1.9


# ---------------------------------------------------------------------------------------------------- the node

@pytest.mark.parametrize("family", cases("PLADIS", tm.supporting("PLADIS")))
def test_pladis_changes_the_output_on_every_family(family):
    model = tm.make_model(family)
    plain = tm.ksample(model, family, cfg=4.0)
    out = tm.ksample(pladis(model), family, cfg=4.0)
    assert torch.isfinite(out).all()
    assert_differs(out, plain)


@pytest.mark.parametrize("family", JOINT)
def test_on_joint_attention_every_layer_is_reached_with_its_text_tokens(family):
    model = tm.make_model(family)
    lmap = layer_map(model)
    seen = []

    def record(call):
        seen.append((call.layer.name, call.text, call.q.shape[2]))
        return torch.softmax(call.q @ call.k.transpose(-1, -2) * call.scale, -1) @ call.v
    patched = model.clone()
    install_cross_attention(patched, lmap, lmap.layers, record, "test")
    assert_close(tm.ksample(patched, family, cfg=1.0, steps=1), tm.ksample(model, family, cfg=1.0, steps=1))
    assert sorted({name for name, *_ in seen}) == sorted(layer.name for layer in lmap.layers)
    for _, text, n in seen:
        assert text.stop - text.start >= 7 and n == 16 + text.stop - text.start


@pytest.mark.parametrize("family", ("flux", "lumina2"))
def test_pladis_on_joint_attention_equals_its_formula_in_the_model(family):
    model = tm.make_model(family)
    lmap = layer_map(model)

    def reference(call):
        return reference_joint(call.q, call.k, call.v, call.scale, 2.0, 1.5, call.text).to(call.v.dtype)
    patched = model.clone()
    install_cross_attention(patched, lmap, lmap.layers, reference, "test")
    assert_close(tm.ksample(pladis(model), family, cfg=4.0), tm.ksample(patched, family, cfg=4.0))


@pytest.mark.parametrize("family", ("sd15", "wan21", "flux", "lumina2"))
@pytest.mark.parametrize("cfg,per_step", [(4.0, 2), (1.0, 1)])
def test_pladis_costs_no_extra_evaluation(family, cfg, per_step):
    counted, counter = tm.counted(pladis(tm.make_model(family)))
    tm.ksample(counted, family, cfg=cfg, steps=3)
    assert counter.samples == per_step * 3 and counter.calls == 3


@pytest.mark.parametrize("family", ("sd15", "wan21", "flux"))
def test_pladis_scale_zero_is_plain_attention_exactly_and_patches_nothing(family):
    model = tm.make_model(family)
    patched = pladis(model, 0.0)
    assert patched.model_options == model.model_options and not patched.wrappers
    assert torch.equal(tm.ksample(patched, family, cfg=4.0), tm.ksample(model, family, cfg=4.0))


def reference_attn2(lam, alpha, extra=None):
    """A full-matrix PLADIS attn2 replace written from the formula (optionally plus a foreign extra term)."""
    def attn2(q, k, v, extra_options):
        heads = extra_options["n_heads"]
        b, n, inner = q.shape
        split = [t.view(b, -1, heads, inner // heads).transpose(1, 2) for t in (q, k, v)]
        out = reference_pladis(*split, (inner // heads) ** -0.5, lam, alpha).to(q.dtype)
        out = out.transpose(1, 2).reshape(b, n, inner)
        return out if extra is None else out + extra(q)
    return attn2


def with_every_attn2(model, patch):
    patched = model.clone()
    for layer in layer_map(model).layers:
        patched.set_model_attn2_replace(patch, layer.group, layer.index, layer.sub)
    return patched


@pytest.mark.parametrize("family", ("sd15", "sdxl"))
@pytest.mark.parametrize("alpha", [1.5, 2.0])
def test_pladis_in_the_unet_equals_the_formula_in_every_attn2(family, alpha):
    model = tm.make_model(family)
    reference = tm.ksample(with_every_attn2(model, reference_attn2(2.0, alpha)), family, cfg=4.0)
    assert_close(tm.ksample(pladis(model, 2.0, alpha), family, cfg=4.0), reference)


def test_pladis_on_chosen_layers_only_differs_from_all_layers():
    model = tm.make_model("sdxl")
    some = tm.ksample(pladis(model, 2.0, 1.5, "output 0-1"), "sdxl", cfg=4.0)
    assert max_diff(some, tm.ksample(pladis(model), "sdxl", cfg=4.0)) > 1e-3
    assert max_diff(some, tm.ksample(model, "sdxl", cfg=4.0)) > 1e-3


def test_pladis_keeps_a_foreign_ipadapter_style_attn2_replace():
    """The foreign patch's own term (here: an extra image-prompt-like output) survives; text attention gets PLADIS."""
    model = tm.make_model("sd15")
    calls = []

    def extra(q):
        return 0.5 * torch.tanh(q)

    def foreign(q, k, v, extra_options):
        calls.append(1)
        return reference_attn2(0.0, 1.5, extra)(q, k, v, extra_options)
    stacked = tm.ksample(pladis(with_every_attn2(model, foreign)), "sd15", cfg=4.0)
    assert calls
    reference = tm.ksample(with_every_attn2(model, reference_attn2(2.0, 1.5, extra)), "sd15", cfg=4.0)
    assert_close(stacked, reference)
    assert max_diff(stacked, tm.ksample(pladis(model), "sd15", cfg=4.0)) > 1e-3


@pytest.mark.parametrize("family", ("wan21", "flux", "lumina2"))
def test_pladis_chains_a_foreign_attention_override_and_block_patch(family):
    model = tm.make_model(family)
    reference = tm.ksample(pladis(model), family, cfg=4.0)
    blocks = has_block_patches(model)
    foreign, calls = with_foreign_patches(model, block=blocks)
    assert_close(tm.ksample(pladis(foreign), family, cfg=4.0), reference)
    assert calls["override"] > 0 and (not blocks or calls["block"] > 0)


def test_pladis_on_joint_attention_keeps_a_foreign_overrides_own_change():
    """A foreign override that changes attention (here: scales it) still acts; PLADIS adds its change on top."""
    model = tm.make_model("flux")

    def halve(func, *args, **kwargs):
        return 0.5 * func(*args, **kwargs)
    foreign = model.clone()
    foreign.model_options["transformer_options"]["optimized_attention_override"] = halve
    lmap = layer_map(model)

    def reference(call):
        plain = torch.softmax(call.q @ call.k.transpose(-1, -2) * call.scale, -1) @ call.v
        return 0.5 * plain + (reference_joint(call.q, call.k, call.v, call.scale, 2.0, 1.5, call.text) - plain)
    expected = model.clone()
    install_cross_attention(expected, lmap, lmap.layers, reference, "test")
    assert_close(tm.ksample(pladis(foreign), "flux", cfg=4.0), tm.ksample(expected, "flux", cfg=4.0))


def test_pladis_reaches_only_wan_cross_attention():
    """On Wan the first attention call of a block (self-attention) is untouched: lambda 0 through the same path and a
    PLADIS on block 1 only both leave block 0's calls as they were."""
    model = tm.make_model("wan21")
    seen = []
    import guidance_zoo.attention_patches.cross_attention as cross

    def record(call):
        seen.append((call.layer.name, call.q.shape[2], call.k.shape[2]))
        return torch.softmax(call.q @ call.k.transpose(-1, -2) * call.scale, -1) @ call.v
    patched = model.clone()
    lmap = layer_map(model)
    cross.install_cross_attention(patched, lmap, lmap.layers, record, "test")
    assert_close(tm.ksample(patched, "wan21", cfg=1.0, steps=1), tm.ksample(model, "wan21", cfg=1.0, steps=1))
    assert sorted(set(seen)) == [("block 0", 32, 7), ("block 1", 32, 7)]


@pytest.mark.parametrize("family", ("sd15", "wan21", "flux"))
def test_pladis_stacks_with_pag_in_one_call(family):
    model = tm.make_model(family)
    stacked = PAG.execute(pladis(model), 3.0, "").result[0]
    counted, counter = tm.counted(stacked)
    out = tm.ksample(counted, family, cfg=4.0)
    assert counter.calls == 3 and counter.samples == 3 * 3
    assert max_diff(out, tm.ksample(PAG.execute(model, 3.0, "").result[0], family, cfg=4.0)) > 1e-3
    assert max_diff(out, tm.ksample(pladis(model), family, cfg=4.0)) > 1e-3


@pytest.mark.parametrize("family", ("sd15", "wan21", "flux", "lumina2"))
def test_pladis_batch_of_two_equals_two_single_runs(family):
    model = pladis(tm.make_model(family))
    tm.assert_batch_equals_single_runs(model, family, seeds=(5, 6), cfg=4.0)


@pytest.mark.parametrize("family", ("sd15", "sdxl", "wan21", "flux", "sd3", "chroma"))
def test_pladis_fp16_is_finite_and_deterministic(family):
    model = pladis(tm.make_model(family, dtype=torch.float16))
    first = tm.ksample(model, family, cfg=4.0)
    assert torch.isfinite(first).all()
    assert torch.equal(first, tm.ksample(model, family, cfg=4.0))


@pytest.mark.parametrize("kwargs,message", [
    (dict(scale=float("nan")), r"'scale' must be a finite number"),
    (dict(scale=11.0), r"'scale' must be between 0.0 and 10.0"),
    (dict(alpha=1.0), r"'alpha' must be between 1.1 and 2.0"),
    (dict(alpha=2.5), r"'alpha' must be between 1.1 and 2.0"),
    (dict(layers="middle 7"), r"layer 'middle 7' does not exist"),
    (dict(layers="double 0"), r"unknown layer group 'double'"),
])
def test_pladis_rejects_bad_input_naming_the_node(kwargs, message):
    inputs = {"scale": 2.0, "alpha": 1.5, "layers": "", **kwargs}
    with pytest.raises(NodeInputError, match=rf"PLADIS \(Guidance Zoo\): {message}"):
        PLADIS.execute(tm.make_model("sd15"), **inputs)


def test_pladis_on_a_model_the_hook_does_not_know_is_a_clear_error():
    model = tm.make_model("sd15")
    model.model.diffusion_model = torch.nn.Linear(2, 2)
    with pytest.raises(NodeInputError, match=r"PLADIS \(Guidance Zoo\): model SD15 \(Linear\) is not supported"):
        pladis(model)
