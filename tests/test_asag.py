"""ASAG: the chunked log-domain Sinkhorn kernels against full-matrix references, and the node on every family."""
import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from tiny_models import assert_close, assert_differs, max_diff
from foreign_patches import with_foreign_patches
from memory_probe import growth_exponent
from support_matrix import cases

from guidance_zoo.attention_patches.hook import PerturbedPass
from guidance_zoo.attention_patches.families import layer_map
from guidance_zoo.core.asag import joint_sinkhorn_attention, sinkhorn_attention, sinkhorn_potentials
from guidance_zoo.guiders.extra_pass import ExtraCondPass
from guidance_zoo.guiders.perturbed_guidance import PerturbedGuidancePostCFG
from guidance_zoo.nodes.asag import ASAG
from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.pag import PAG


def asag(model, scale=1.5, epsilon=1.0, iterations=2, layers=""):
    return ASAG.execute(model, scale, epsilon, iterations, layers).result[0]


def reference_plan(q, k, scale, epsilon, iterations):
    """Textbook multiplicative Sinkhorn on the full matrix K = exp(-S / eps) in float64: u = a / K w, w = b / K^T u,
    starting and ending with the row scaling; rows sum to 1, columns to Nq / Nk."""
    s = (q.double() @ k.double().transpose(-1, -2)) * scale
    kernel = torch.exp(-s / epsilon)
    nq, nk = s.shape[-2], s.shape[-1]
    w = torch.ones(s.shape[:-2] + (nk,), dtype=torch.float64)
    u = 1 / (kernel @ w.unsqueeze(-1)).squeeze(-1)
    for _ in range(iterations):
        w = (nq / nk) / (kernel.transpose(-1, -2) @ u.unsqueeze(-1)).squeeze(-1)
        u = 1 / (kernel @ w.unsqueeze(-1)).squeeze(-1)
    return u.unsqueeze(-1) * kernel * w.unsqueeze(-2)


def qkv(n=40, seed=0, heads=2, d=8, scale=1.5):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(2, heads, n, d, generator=g) * (scale if i < 2 else 1) for i in range(3))


# ---------------------------------------------------------------------------------------------------- kernels

@pytest.mark.parametrize("iterations", [0, 1, 3, 8])
@pytest.mark.parametrize("epsilon", [1.0, 0.5])
def test_chunked_log_domain_sinkhorn_equals_the_full_matrix_reference(iterations, epsilon):
    q, k, v = qkv()
    out = sinkhorn_attention(q, k, v, 0.35, epsilon, iterations, chunk=7)
    expected = (reference_plan(q, k, 0.35, epsilon, iterations) @ v.double()).float()
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-4)


def test_no_iteration_is_softmax_of_the_negated_logits():
    q, k, v = qkv(seed=1)
    s = q @ k.transpose(-1, -2) * 0.35
    torch.testing.assert_close(sinkhorn_attention(q, k, v, 0.35, 2.0, 0, chunk=9), torch.softmax(-s / 2.0, -1) @ v,
                               atol=1e-5, rtol=1e-5)


def test_the_plan_becomes_doubly_stochastic_and_favours_dissimilar_keys():
    q, k, _ = qkv(n=24, seed=2)
    f, g = sinkhorn_potentials(q, k, 0.35, 1.0, 60, chunk=5)
    s = q @ k.transpose(-1, -2) * 0.35
    plan = torch.exp(-s + f.unsqueeze(-1) + g.unsqueeze(-2))
    torch.testing.assert_close(plan.sum(-1), torch.ones(plan.shape[:-1]), atol=1e-5, rtol=0)
    torch.testing.assert_close(plan.sum(-2), torch.ones(plan.shape[:-1]), atol=1e-4, rtol=0)
    assert float((plan * s).sum(-1).mean()) < float((torch.softmax(s, -1) * s).sum(-1).mean())


@pytest.mark.parametrize("image", [slice(5, 30), slice(0, 25)])
def test_joint_variant_keeps_text_rows_and_text_weights_and_plans_the_image_block(image):
    q, k, v = qkv(n=30, seed=3)
    out = joint_sinkhorn_attention(q, k, v, 0.35, image, 1.0, 3, chunk=4)
    text = slice(image.stop, 30) if image.start == 0 else slice(0, image.start)
    dense = torch.softmax(q.double() @ k.double().transpose(-1, -2) * 0.35, -1)
    expected = (dense @ v.double()).clone()
    plan = reference_plan(q[:, :, image], k[:, :, image], 0.35, 1.0, 3)
    image_rows = dense[:, :, image]
    mass = image_rows[..., image].sum(-1, keepdim=True)
    expected[:, :, image] = image_rows[..., text] @ v.double()[:, :, text] + mass * (plan @ v.double()[:, :, image])
    torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("kernel", ["plain", "joint"])
def test_sinkhorn_memory_is_linear_in_tokens_at_a_fixed_chunk(kernel):
    def run(n):
        q = torch.randn(1, 2, n, 8)
        if kernel == "plain":
            return sinkhorn_attention(q, q, q, 0.35, 1.0, 2, chunk=128)
        return joint_sinkhorn_attention(q, q, q, 0.35, slice(16, n), 1.0, 2, chunk=128)
    exponent = growth_exponent(run, tokens=(512, 2048))
    assert exponent < 1.1, exponent


def test_masked_keys_get_no_transport_and_fp16_inputs_stay_finite():
    q, k, v = qkv(n=20, seed=4)
    mask = torch.zeros(1, 1, 1, 20)
    mask[..., 3] = float("-inf")
    f, g = sinkhorn_potentials(q, k, 0.35, 1.0, 4, mask, chunk=6)
    out = sinkhorn_attention(q.half(), k.half(), v.half(), 0.35, 1.0, 4, mask, chunk=6)
    assert bool(torch.isfinite(f).all() and torch.isfinite(g).all()) and out.dtype == torch.float16
    assert bool(torch.isfinite(out).all())
    changed = v.clone()
    changed[:, :, 3] = 1e3
    torch.testing.assert_close(sinkhorn_attention(q, k, changed, 0.35, 1.0, 4, mask, chunk=6),
                               sinkhorn_attention(q, k, v, 0.35, 1.0, 4, mask, chunk=6))


# ---------------------------------------------------------------------------------------------------- the node

@pytest.mark.parametrize("family", cases("ASAG", tm.supporting("ASAG")))
def test_asag_changes_the_output_on_every_family(family):
    model = tm.make_model(family)
    plain = tm.ksample(model, family, cfg=4.0)
    out = tm.ksample(asag(model), family, cfg=4.0)
    assert torch.isfinite(out).all()
    assert_differs(out, plain)


def reference_perturbation(epsilon, iterations):
    """The perturbed attention written from the formula with full matrices (joint: image block planned)."""
    def perturb(call):
        q, k, v = call.q, call.k, call.v
        if not (call.joint and call.text_len > 0):
            return (reference_plan(q, k, call.scale, epsilon, iterations) @ v.double()).to(v.dtype)
        n, image = q.shape[2], call.image
        text = slice(image.stop, n) if image.start == 0 else slice(0, image.start)
        dense = torch.softmax(q.double() @ k.double().transpose(-1, -2) * call.scale, -1)
        out = dense @ v.double()
        plan = reference_plan(q[:, :, image], k[:, :, image], call.scale, epsilon, iterations)
        rows = dense[:, :, image]
        out[:, :, image] = (rows[..., text] @ v.double()[:, :, text]
                            + rows[..., image].sum(-1, keepdim=True) * (plan @ v.double()[:, :, image]))
        return out.to(v.dtype)
    return perturb


@pytest.mark.parametrize("family", ("sd15", "sdxl", "flux", "sd3", "wan21", "lumina2"))
def test_asag_node_equals_the_formula_run_through_the_hook(family):
    model = tm.make_model(family)
    lmap = layer_map(model)
    reference = model.clone()
    extra_pass = ExtraCondPass(PerturbedPass(lmap, lmap.parse(""), reference_perturbation(0.7, 3), "test"))
    extra_pass.install(reference)
    reference.set_model_sampler_post_cfg_function(PerturbedGuidancePostCFG(extra_pass, 1.5))
    assert_close(tm.ksample(asag(model, 1.5, 0.7, 3), family, cfg=4.0), tm.ksample(reference, family, cfg=4.0))


@pytest.mark.parametrize("family", ("sd15", "flux", "wan21", "lumina2"))
@pytest.mark.parametrize("cfg,per_step", [(4.0, 3), (1.0, 2)])
def test_asag_costs_three_evaluations_with_cfg_and_two_without_in_one_call(family, cfg, per_step):
    counted, counter = tm.counted(asag(tm.make_model(family)))
    tm.ksample(counted, family, cfg=cfg, steps=3)
    assert counter.samples == per_step * 3 and counter.calls == 3


@pytest.mark.parametrize("family", ("sd15", "flux"))
def test_asag_scale_zero_is_cfg_at_two_evaluations(family):
    model = tm.make_model(family)
    counted, counter = tm.counted(asag(model, 0.0))
    assert torch.equal(tm.ksample(counted, family, cfg=4.0), tm.ksample(model, family, cfg=4.0))
    assert counter.samples == 2 * 3


@pytest.mark.parametrize("family", ("sd15", "flux", "wan21", "qwen_image"))
def test_asag_batch_of_two_equals_two_single_runs(family):
    model = asag(tm.make_model(family))
    tm.assert_batch_equals_single_runs(model, family, seeds=(5, 6), cfg=4.0)


@pytest.mark.parametrize("family", ("sd15", "sdxl", "flux", "sd3", "wan21", "chroma"))
def test_asag_fp16_is_finite_and_deterministic(family):
    model = asag(tm.make_model(family, dtype=torch.float16))
    first = tm.ksample(model, family, cfg=4.0)
    assert torch.isfinite(first).all()
    assert torch.equal(first, tm.ksample(model, family, cfg=4.0))


@pytest.mark.parametrize("family", ("sd15", "flux", "wan21"))
def test_asag_stacks_with_pag_in_one_call(family):
    model = tm.make_model(family)
    stacked = PAG.execute(asag(model), 3.0, "").result[0]
    counted, counter = tm.counted(stacked)
    out = tm.ksample(counted, family, cfg=4.0)
    assert counter.calls == 3 and counter.samples == 4 * 3
    assert max_diff(out, tm.ksample(PAG.execute(model, 3.0, "").result[0], family, cfg=4.0)) > 1e-3


@pytest.mark.parametrize("family", ("flux", "wan21"))
def test_asag_chains_a_foreign_attention_override_and_block_patch(family):
    model = tm.make_model(family)
    reference = tm.ksample(asag(model), family, cfg=4.0)
    foreign, calls = with_foreign_patches(model)
    assert_close(tm.ksample(asag(foreign), family, cfg=4.0), reference)
    assert calls["override"] > 0 and calls["block"] > 0


def test_asag_keeps_a_foreign_attn1_replace_for_the_rows_it_does_not_perturb():
    model = tm.make_model("sd15")
    seen = []

    def foreign_attn1(q, k, v, extra_options):
        seen.append(q.shape[0])
        heads = extra_options["n_heads"]
        split = [t.view(t.shape[0], -1, heads, t.shape[-1] // heads).transpose(1, 2) for t in (q, k, v)]
        return torch.nn.functional.scaled_dot_product_attention(*split).transpose(1, 2).reshape(q.shape)
    foreign = model.clone()
    foreign.set_model_attn1_replace(foreign_attn1, "middle", 0)
    assert_close(tm.ksample(asag(foreign), "sd15", cfg=4.0), tm.ksample(asag(model), "sd15", cfg=4.0))
    assert seen and all(rows == 3 for rows in seen)


def test_asag_on_other_layers_gives_another_result():
    model = tm.make_model("flux")
    assert max_diff(tm.ksample(asag(model, layers="single 0"), "flux", cfg=4.0),
                    tm.ksample(asag(model), "flux", cfg=4.0)) > 1e-4


@pytest.mark.parametrize("kwargs,message", [
    (dict(scale=float("nan")), r"'scale' must be a finite number"),
    (dict(scale=-1.0), r"'scale' must be between"),
    (dict(epsilon=0.0), r"'epsilon' must be between 0.01 and 100.0"),
    (dict(iterations=51), r"'iterations' must be between 0 and 50"),
    (dict(iterations=1.5), r"'iterations' must be a whole number"),
    (dict(layers="double 9"), r"layer 'double 9' does not exist in this Flux model"),
    (dict(layers="middle"), r"unknown layer group 'middle' for Flux"),
])
def test_asag_rejects_bad_input_naming_the_node(kwargs, message):
    inputs = {"scale": 1.5, "epsilon": 1.0, "iterations": 2, "layers": "", **kwargs}
    with pytest.raises(NodeInputError, match=rf"ASAG \(Guidance Zoo\): {message}"):
        ASAG.execute(tm.make_model("flux"), **inputs)
