"""S-CFG: kernels against the official computation written out with full matrices, the node end to end on the tiny
UNets against maps captured independently, neutral setting, cost, batch, fp16, memory, stacking, bad input."""
import math

import pytest
import torch
import torch.nn.functional as F

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from tiny_models import assert_close
from memory_probe import growth_exponent
from support_matrix import cases

from guidance_zoo.attention_patches.families import layer_map
from guidance_zoo.attention_patches.scfg import paper_layers
from guidance_zoo.core.scfg import rate_map, region_masks, ssgc_cross_attention
from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.pag import PAG
from guidance_zoo.nodes.scfg import SCFG


def scfg(model, min_rate=0.8, max_rate=3.0, max_guidance=15.0, layers=""):
    return SCFG.execute(model, min_rate, max_rate, max_guidance, layers).result[0]


# ------------------------------------------------------------------ the official computation, written out in full

def official_kernel():
    """sd/gaussian_smoothing.py of the official code: exp(-((x - mean) / (2 sigma))^2), 3 x 3, sigma 0.5."""
    kernel = torch.ones(3, 3)
    grid = torch.meshgrid(torch.arange(3.0), torch.arange(3.0), indexing="ij")
    for g in grid:
        kernel = kernel * torch.exp(-((g - 1) / (2 * 0.5)) ** 2) / (0.5 * math.sqrt(2 * math.pi))
    return (kernel / kernel.sum())[None, None]


def official_smooth(maps):
    b, c, h, w = maps.shape
    return F.conv2d(F.pad(maps.reshape(b * c, 1, h, w), (1, 1, 1, 1), mode="reflect"), official_kernel()).reshape(
        b, c, h, w)


def official_masks(self_maps, cross_maps):
    """sd/utils.py get_mask, on the cond rows: full head-averaged maps sa (B, N, N) and ca (B, N, T) per layer."""
    grid = max(int(math.isqrt(sa.shape[-1])) for sa in self_maps)
    new_ca, new_fore = 0, 0
    for sa, ca in zip(self_maps, cross_maps):
        ssgc = sa.clone()
        for _ in range(3):
            ssgc = ssgc + sa @ sa
        ca = (ssgc / 4) @ ca
        h = int(math.isqrt(sa.shape[-1]))
        ca = ca.transpose(1, 2).reshape(ca.shape[0], -1, h, h)
        if h != grid:
            ca = F.interpolate(ca, scale_factor=grid // h, mode="bilinear")
        ca = official_smooth(ca)
        new_ca = new_ca + ca / (ca.mean(dim=[2, 3], keepdim=True) + 1e-8)
        fore = torch.stack([ca[:, 0], ca[:, 1:].sum(dim=1)], dim=1)
        new_fore = new_fore + fore / fore.mean(dim=[2, 3], keepdim=True)
    new_ca, new_fore = new_ca / len(self_maps), new_fore / len(self_maps)
    ca_mask = (new_ca == new_ca.max(dim=1)[0].unsqueeze(1)).float()
    fore_mask = 1.0 - (new_fore == new_fore.max(dim=1)[0].unsqueeze(1)).float()[:, :1]
    return ca_mask, fore_mask


def official_rate(eps_c, eps_u, ca_mask, fore_mask, w):
    """sd/sd.py: the per-region rate, clamps and smoothing."""
    factor = eps_c.shape[-1] // ca_mask.shape[-1]
    mask_t = F.interpolate(ca_mask, scale_factor=factor, mode="nearest")
    mask_fore = F.interpolate(fore_mask, scale_factor=factor, mode="nearest")
    delta_norm = (eps_c - eps_u).norm(dim=1, keepdim=True)
    down = (delta_norm * mask_t).sum([2, 3]) / (mask_t.sum([2, 3]) + 1e-8)
    up = (delta_norm * mask_fore).sum([2, 3]) / (mask_fore.sum([2, 3]) + 1e-8)
    rate = up * (mask_t.sum([2, 3]) > 0).float() / (down + 1e-8)
    rate = (rate.unsqueeze(-1).unsqueeze(-1) * mask_t).sum(dim=1, keepdim=True)
    rate = torch.clamp(rate, min=0.8, max=3.0).clamp_max(15.0 / w)
    return official_smooth(rate)


def full_probs(q, k, scale):
    return torch.softmax(q @ k.transpose(-1, -2) * scale, dim=-1).mean(1)


def random_layers(seed, grids=(4, 4, 2), batch=2, heads=2, dim=8, tokens=6):
    g = torch.Generator().manual_seed(seed)
    layers = []
    for h in grids:
        n = h * h
        q, k = torch.randn(batch, heads, n, dim, generator=g), torch.randn(batch, heads, n, dim, generator=g)
        q2, k2 = torch.randn(batch, heads, n, dim, generator=g), torch.randn(batch, heads, tokens, dim, generator=g)
        layers.append((q, k, q2, k2, h))
    return layers


# ------------------------------------------------------------------------------------------------------- kernels

def test_ssgc_in_chunks_equals_the_full_matrix_product():
    q, k, q2, k2, h = random_layers(0, grids=(6,))[0]
    ca = full_probs(q2, k2, 0.35)
    sa = full_probs(q, k, 0.35)
    expected = ((sa + 3 * sa @ sa) / 4) @ ca
    torch.testing.assert_close(ssgc_cross_attention(q, k, 0.35, ca, chunk=5), expected, rtol=1e-5, atol=1e-6)


def test_masks_and_rate_equal_the_official_computation_on_fixed_maps():
    layers = random_layers(1)
    self_maps = [full_probs(q, k, 0.35) for q, k, *_ in layers]
    cross_maps = [full_probs(q2, k2, 0.35) for _, _, q2, k2, _ in layers]
    ours = [ssgc_cross_attention(q, k, 0.35, ca, chunk=3).transpose(1, 2).reshape(2, -1, h, h)
            for (q, k, *_, h), ca in zip(layers, cross_maps)]
    token_masks, fore_mask = region_masks(ours)
    ca_mask, expected_fore = official_masks(self_maps, cross_maps)
    torch.testing.assert_close(token_masks, ca_mask)
    torch.testing.assert_close(fore_mask, expected_fore)
    assert 0 < float(fore_mask.mean()) < 1 and token_masks.sum(1).min() >= 1
    g = torch.Generator().manual_seed(2)
    eps_c, eps_u = torch.randn(2, 4, 16, 16, generator=g), torch.randn(2, 4, 16, 16, generator=g)
    rate = rate_map(eps_c - eps_u, token_masks, fore_mask, 4.0)
    torch.testing.assert_close(rate, official_rate(eps_c, eps_u, ca_mask, expected_fore, 4.0))
    assert float(rate.std()) > 1e-3


def test_rate_is_scale_free_in_the_prediction_space():
    """rate_k is a ratio of mean norms, so the same map comes out of D or eps = (x - D) / sigma differences."""
    layers = random_layers(3)
    maps = [ssgc_cross_attention(q, k, 0.35, full_probs(q2, k2, 0.35)).transpose(1, 2).reshape(2, -1, h, h)
            for q, k, q2, k2, h in layers]
    masks = region_masks(maps)
    delta = torch.randn(2, 4, 8, 8, generator=torch.Generator().manual_seed(4))
    torch.testing.assert_close(rate_map(delta, *masks, 5.0), rate_map(-delta / 7.5, *masks, 5.0))


def test_ssgc_memory_grows_linearly_in_tokens_at_a_fixed_chunk():
    def run(n):
        q, k = torch.randn(1, 2, n, 8), torch.randn(1, 2, n, 8)
        ca = torch.rand(1, n, 77)
        ssgc_cross_attention(q, k, 0.35, ca, chunk=128)
    assert growth_exponent(run) < 1.1


# ----------------------------------------------------------------------------------------- the node, end to end

def reference_step(model, family, cfg):
    """One Euler step (= the guided D) computed independently: full attention maps recorded by our own replace
    patches on the paper's layers in a plain CFG run, the official masks and rate, D = D_u + w R (D_c - D_u)."""
    lmap = layer_map(model)
    layers = paper_layers(model, lmap)
    recorded, preds = {"self": [], "cross": []}, {}

    def recorder(kind):
        def replace(q, k, v, extra):
            heads = extra["n_heads"]
            canon = [t.view(t.shape[0], -1, heads, t.shape[-1] // heads).transpose(1, 2) for t in (q, k, v)]
            rows = extra["cond_or_uncond"].index(0)
            per = q.shape[0] // len(extra["cond_or_uncond"])
            part = slice(rows * per, (rows + 1) * per)
            recorded[kind].append(full_probs(canon[0][part], canon[1][part], canon[0].shape[-1] ** -0.5))
            out = F.scaled_dot_product_attention(*canon)
            return out.transpose(1, 2).reshape(q.shape[0], -1, q.shape[-1])
        return replace
    rec = model.clone()
    for layer in layers:
        rec.set_model_attn1_replace(recorder("self"), layer.group, layer.index, layer.sub)
        rec.set_model_attn2_replace(recorder("cross"), layer.group, layer.index, layer.sub)

    def cfg_function(args):
        preds["c"], preds["u"] = args["cond_denoised"], args["uncond_denoised"]
        return args["uncond"] + (args["cond"] - args["uncond"]) * args["cond_scale"]
    rec.set_model_sampler_cfg_function(cfg_function)
    tm.ksample(rec, family, cfg=cfg, steps=1, seeds=(0, 1))
    ca_mask, fore_mask = official_masks(recorded["self"], recorded["cross"])
    rate = official_rate(preds["c"], preds["u"], ca_mask, fore_mask, cfg)
    guided = preds["u"] + cfg * rate * (preds["c"] - preds["u"])
    return model.model.process_latent_out(guided), rate


@pytest.mark.parametrize("family", tm.UNETS)
def test_scfg_equals_the_official_rule_on_independently_captured_maps(family):
    model = tm.make_model(family)
    expected, rate = reference_step(model, family, 5.0)
    assert float(rate.max() - rate.min()) > 0.05
    assert_close(tm.ksample(scfg(model), family, cfg=5.0, steps=1, seeds=(0, 1)), expected)


@pytest.mark.parametrize("family", cases("S-CFG", tm.UNETS))
def test_scfg_changes_the_output_at_two_evaluations_in_one_call_per_step(family):
    model = tm.make_model(family)
    plain = tm.ksample(model, family, cfg=5.0)
    counted, counter = tm.counted(scfg(model))
    out = tm.ksample(counted, family, cfg=5.0)
    assert torch.isfinite(out).all()
    assert float((out - plain).abs().max()) > 1e-2 * float(plain.abs().max())
    assert counter.calls == 3 and counter.samples == 2 * 3


@pytest.mark.parametrize("path", [tm.ksample, tm.guider_sample])
def test_a_constant_rate_of_one_is_plain_cfg_and_cfg_1_is_untouched(path):
    model = tm.make_model("sd15")
    assert_close(path(scfg(model, 1.0, 1.0), "sd15", cfg=5.0), path(model, "sd15", cfg=5.0))
    counted, counter = tm.counted(scfg(model))
    assert_close(path(counted, "sd15", cfg=1.0), path(model, "sd15", cfg=1.0))
    assert counter.samples == 3


@pytest.mark.parametrize("family", tm.UNETS)
def test_scfg_batch_of_two_equals_two_single_runs_and_is_deterministic(family):
    model = scfg(tm.make_model(family))
    both = tm.ksample(model, family, cfg=5.0, seeds=(5, 6))
    assert torch.equal(both, tm.ksample(model, family, cfg=5.0, seeds=(5, 6)))
    for i, seed in enumerate((5, 6)):
        assert_close(both[i:i + 1], tm.ksample(model, family, cfg=5.0, seeds=(seed,)))


@pytest.mark.parametrize("family", tm.UNETS)
def test_scfg_fp16_is_finite(family):
    model = tm.make_model(family, dtype=torch.float16)
    assert torch.isfinite(tm.ksample(scfg(model), family, cfg=5.0)).all()


def test_scfg_stacks_with_pag_in_one_call_and_keeps_a_foreign_attention_patch():
    model = tm.make_model("sd15")
    counted, counter = tm.counted(PAG.execute(scfg(model), 2.0, "").result[0])
    stacked = tm.ksample(counted, "sd15", cfg=5.0)
    assert counter.calls == 3 and counter.samples == 3 * 3
    assert float((stacked - tm.ksample(scfg(model), "sd15", cfg=5.0)).abs().max()) > 1e-3
    seen = {"attn1": 0, "attn2": 0}

    def foreign(kind):
        def replace(q, k, v, extra):
            seen[kind] += 1
            heads = extra["n_heads"]
            canon = [t.view(t.shape[0], -1, heads, t.shape[-1] // heads).transpose(1, 2) for t in (q, k, v)]
            return F.scaled_dot_product_attention(*canon).transpose(1, 2).reshape(q.shape[0], -1, q.shape[-1])
        return replace
    foreign_model = model.clone()
    foreign_model.set_model_attn1_replace(foreign("attn1"), "middle", 0)
    foreign_model.set_model_attn2_replace(foreign("attn2"), "middle", 0)
    assert_close(tm.ksample(scfg(foreign_model), "sd15", cfg=5.0), tm.ksample(scfg(model), "sd15", cfg=5.0))
    assert seen["attn1"] == 3 and seen["attn2"] == 3


def test_layer_choice_matters_and_paper_layers_follow_the_resolution():
    model = tm.make_model("sd15")
    assert [layer.name for layer in paper_layers(model, layer_map(model))] == [
        "input 3:0", "middle 0:0", "output 0:0", "output 1:0"]
    a = tm.ksample(scfg(model, layers="middle"), "sd15", cfg=5.0)
    b = tm.ksample(scfg(model, layers="input 1, output 3"), "sd15", cfg=5.0)
    assert float((a - b).abs().max()) > 1e-3


@pytest.mark.parametrize("family", cases("S-CFG", [], tm.DITS))
def test_scfg_refuses_dits_naming_the_node_and_family(family):
    with pytest.raises(NodeInputError, match=r"S-CFG \(Guidance Zoo\): S-CFG needs separate cross-attention maps.*"
                                             r"only UNets"):
        scfg(tm.make_model(family))


@pytest.mark.parametrize("kwargs,message", [
    (dict(min_rate=float("nan")), r"'min_rate' must be a finite number"),
    (dict(max_rate=-1.0), r"'max_rate' must be between"),
    (dict(min_rate=2.0, max_rate=1.0), r"'min_rate' \(2.0\) must not exceed 'max_rate'"),
    (dict(layers="middle 7"), r"layer 'middle 7' does not exist"),
])
def test_scfg_rejects_bad_input_naming_the_node(kwargs, message):
    with pytest.raises(NodeInputError, match=rf"S-CFG \(Guidance Zoo\): {message}"):
        scfg(tm.make_model("sd15"), **kwargs)
