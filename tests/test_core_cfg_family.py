"""core/ kernels of the CFG family on fixed tensors, each against its formula written out here."""
import math

import pytest
import scipy.stats
import torch

from guidance_zoo.core.adaptive_guidance import guidance_cosine
from guidance_zoo.core.beta_cfg import beta_cfg, beta_pdf
from guidance_zoo.core.cfg_zero_star import cfg_zero_star
from guidance_zoo.core.dynamic_thresholding import dynamic_threshold, percentile_range
from guidance_zoo.core.fdg import fdg, laplacian_pyramid, reconstruct
from guidance_zoo.core.rescale_cfg import rescale_cfg
from guidance_zoo.core.schedules import in_interval, schedule_factor, scheduled_cfg
from guidance_zoo.core.spaces import from_model_output, to_model_output
from guidance_zoo.core.tcfg import tangential_damping

SHAPES = [(2, 4, 8, 8), (2, 16, 3, 8, 8), (2, 4, 7, 9)]


def pair(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=g), torch.randn(shape, generator=g)


@pytest.mark.parametrize("kind", ["linear", "cosine", "linear_decreasing", "cosine_decreasing", "constant"])
def test_schedules_average_one_and_increase_or_decrease(kind):
    values = [schedule_factor(kind, i / 999) for i in range(1000)]
    assert abs(sum(values) / len(values) - 1.0) < 2e-3
    if kind in ("linear", "cosine"):
        assert values[0] == pytest.approx(0.0) and values == sorted(values)
    if kind.endswith("decreasing"):
        assert values == sorted(values, reverse=True)
    assert schedule_factor(kind, 0.0, floor=0.5) >= 0.5


def test_interval_and_excess_scaling():
    assert in_interval(1.0, 0.28, 5.42) and not in_interval(0.28, 0.28, 5.42) and in_interval(5.42, 0.28, 5.42)
    assert scheduled_cfg(7.0, 0.0) == 1.0 and scheduled_cfg(7.0, 1.0) == 7.0 and scheduled_cfg(7.0, 2.0) == 13.0


@pytest.mark.parametrize("prediction", ["eps", "v", "flow"])
def test_space_conversions_round_trip(prediction):
    x, d = pair((2, 4, 5, 5))
    sigma = torch.tensor([0.7, 3.0])
    torch.testing.assert_close(from_model_output(x, to_model_output(x, d, sigma, prediction), sigma, prediction), d,
                               rtol=1e-5, atol=1e-5)


def test_v_space_is_the_vp_velocity_of_the_prediction():
    """v = alpha eps - sigma_vp x0 with alpha = 1/sqrt(s^2+1), sigma_vp = s/sqrt(s^2+1), for x = x0 + s eps."""
    x0, eps = pair((2, 4, 5, 5), 11)
    sigma = torch.tensor([0.5, 4.0])
    s = sigma.view(2, 1, 1, 1)
    v = to_model_output(x0 + s * eps, x0, sigma, "v")
    torch.testing.assert_close(v, (eps - s * x0) / (s * s + 1).sqrt(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES[:2])
def test_tcfg_matches_explicit_svd_per_sample(shape):
    cond, uncond = pair(shape, 1)
    out = tangential_damping(cond, uncond)
    for i in range(shape[0]):
        a = torch.stack([uncond[i].flatten(), cond[i].flatten()]).double()
        v1 = torch.linalg.svd(a, full_matrices=False)[2][0]
        torch.testing.assert_close(out[i].flatten().double(), (a[0] @ v1) * v1, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("shape", SHAPES)
def test_rescale_cfg_formula_per_sample(shape):
    cond, guided = pair(shape, 2)
    guided[1] *= 10
    out = rescale_cfg(cond, guided, 0.7)
    for i in range(shape[0]):
        ratio = cond[i].std() / guided[i].std()
        torch.testing.assert_close(out[i], 0.7 * guided[i] * ratio + 0.3 * guided[i], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(rescale_cfg(cond, guided, 0.0), guided)


@pytest.mark.parametrize("shape", SHAPES)
def test_cfg_zero_star_official_formula(shape):
    c, u = pair(shape, 3)
    out = cfg_zero_star(c, u, 5.0)
    for i in range(shape[0]):
        alpha = (c[i] * u[i]).sum() / ((u[i] * u[i]).sum() + 1e-8)
        torch.testing.assert_close(out[i], alpha * u[i] + 5.0 * (c[i] - alpha * u[i]), rtol=1e-5, atol=1e-5)


def test_dynamic_threshold_reduces_to_imagen_on_centred_data():
    d = torch.randn(2, 4, 8, 8) * 3
    d = d - d.mean(dim=(2, 3), keepdim=True)
    out = dynamic_threshold(d, torch.ones(2, 4, 1), 0.995)
    for i in range(2):
        for ch in range(4):
            s = max(torch.quantile(d[i, ch].abs().flatten(), 0.995).item(), 1.0)
            torch.testing.assert_close(out[i, ch], d[i, ch].clamp(-s, s) / s, rtol=1e-5, atol=1e-5)


def test_dynamic_threshold_keeps_a_prediction_inside_the_reference_range_and_handles_video():
    d = torch.randn(2, 16, 3, 6, 6)
    wide = percentile_range(d * 10, 0.995)
    assert wide.shape == (2, 16, 1)
    torch.testing.assert_close(dynamic_threshold(d, wide, 0.995), d, rtol=1e-5, atol=1e-5)
    reference = percentile_range(d, 0.995)
    squeezed = dynamic_threshold(d * 10, reference, 0.995)
    spread = (squeezed - (d * 10).mean(dim=(2, 3, 4), keepdim=True)).abs().amax(dim=(2, 3, 4))
    assert bool((spread <= reference.squeeze(-1) + 1e-4).all())


@pytest.mark.parametrize("shape", [(2, 4, 8, 8), (1, 4, 7, 9), (1, 3, 5, 3), (1, 2, 2, 2)])
@pytest.mark.parametrize("levels", [2, 3, 4])
def test_laplacian_pyramid_reconstructs_exactly_at_any_size(shape, levels):
    x = torch.randn(shape)
    torch.testing.assert_close(reconstruct(laplacian_pyramid(x, levels)), x, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", SHAPES)
def test_fdg_with_equal_scales_and_no_projection_is_cfg(shape):
    c, u = pair(shape, 4)
    torch.testing.assert_close(fdg(c, u, [6.0, 6.0, 6.0], [1.0, 1.0, 1.0]), u + 6.0 * (c - u), rtol=1e-4, atol=1e-4)


def test_fdg_guides_each_band_with_its_own_scale():
    c, u = pair((1, 4, 16, 16), 5)
    out = fdg(c, u, [10.0, 3.0], [1.0, 1.0])
    (high_c, low_c), (high_u, low_u) = laplacian_pyramid(c, 2), laplacian_pyramid(u, 2)
    expected = reconstruct([high_u + 10 * (high_c - high_u), low_u + 3 * (low_c - low_u)])
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)
    assert float((out - (u + 3 * (c - u))).abs().max()) > 0.1 and float((out - (u + 10 * (c - u))).abs().max()) > 0.1


def test_fdg_on_video_is_per_frame():
    c, u = pair((2, 4, 3, 8, 8), 6)
    out = fdg(c, u, [10.0, 3.0], [1.0, 1.0])
    for t in range(3):
        torch.testing.assert_close(out[:, :, t], fdg(c[:, :, t], u[:, :, t], [10.0, 3.0], [1.0, 1.0]))


def test_fdg_parallel_weights_project_each_level_per_sample():
    c, u = pair((2, 4, 8, 8), 7)
    out = fdg(c, u, [8.0, 3.0], [0.0, 0.5])
    levels = []
    for pc, pu, w, rho in zip(laplacian_pyramid(c, 2), laplacian_pyramid(u, 2), [8.0, 3.0], [0.0, 0.5]):
        delta = pc - pu
        for i in range(2):
            unit = pc[i].flatten() / pc[i].norm()
            parallel = (delta[i].flatten() @ unit) * unit
            delta[i] = (delta[i].flatten() - parallel + rho * parallel).reshape(delta[i].shape)
        levels.append(pu + w * delta)
    torch.testing.assert_close(out, reconstruct(levels), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("a,b", [(2.0, 2.0), (2.0, 3.0), (0.5, 0.5), (1.0, 1.0)])
def test_beta_pdf_matches_scipy(a, b):
    for p in (0.01, 0.3, 0.5, 0.77, 0.99):
        assert beta_pdf(p, a, b) == pytest.approx(scipy.stats.beta.pdf(p, a, b), rel=1e-9)
    assert beta_pdf(0.0, 2.0, 2.0) == 0.0 and beta_pdf(1.0, 2.0, 3.0) == 0.0


@pytest.mark.parametrize("shape", SHAPES)
def test_beta_cfg_formula_per_sample(shape):
    c, u = pair(shape, 8)
    out = beta_cfg(c, u, 7.5, 0.4, 2.0, 3.0, 1.0)
    pdf = scipy.stats.beta.pdf(0.4, 2.0, 3.0)
    for i in range(shape[0]):
        delta = c[i] - u[i]
        torch.testing.assert_close(out[i], u[i] + 7.5 * pdf * delta / delta.norm(), rtol=1e-5, atol=1e-5)


def test_guidance_cosine_per_sample():
    c, u = pair((3, 16, 2, 4, 4), 9)
    u[1] = c[1] * 2
    cos = guidance_cosine(c, u)
    assert cos.shape == (3,) and cos[1] == pytest.approx(1.0, abs=1e-5)
    assert cos[0] == pytest.approx(float(torch.nn.functional.cosine_similarity(c[0].flatten(), u[0].flatten(), 0)),
                                   abs=1e-5)
    assert not math.isnan(float(guidance_cosine(torch.zeros(1, 4), torch.zeros(1, 4))[0]))


@pytest.mark.parametrize("a,b", [(0.1, 2.0), (2.0, 0.1), (0.5, 0.99), (0.1, 0.1), (0.99, 20.0)])
def test_beta_cfg_is_finite_at_the_ends_for_a_or_b_below_one(a, b):
    c, u = pair((2, 4, 3, 6, 6), 10)
    for p in (0.0, 0.5, 1.0):
        assert torch.isfinite(beta_cfg(c, u, 7.5, p, a, b, 1.0)).all()
    edge = beta_cfg(c, u, 7.5, 0.0, a, b, 1.0) if a < 1 else beta_cfg(c, u, 7.5, 1.0, a, b, 1.0)
    at = 0.02 if a < 1 else 0.98
    delta = c - u
    expected = u + 7.5 * scipy.stats.beta.pdf(at, a, b) * delta / delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1, 1)
    torch.testing.assert_close(edge, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("levels", [2, 3, 4])
def test_fdg_parallel_weights_on_video_match_per_level_projection(levels):
    c, u = pair((2, 4, 2, 8, 8), 11)
    out = fdg(c, u, [8.0] * (levels - 1) + [3.0], [0.5] * levels)
    assert out.shape == c.shape and torch.isfinite(out).all()
    frames = [laplacian_pyramid(x.permute(0, 2, 1, 3, 4).reshape(4, 4, 8, 8), levels) for x in (c, u)]
    expected = []
    for level, (pc, pu) in enumerate(zip(*frames)):
        delta, pc5 = (t.reshape(2, 2, *t.shape[1:]).permute(0, 2, 1, 3, 4) for t in (pc - pu, pc))
        for i in range(2):
            unit = pc5[i].flatten() / pc5[i].norm()
            parallel = (delta[i].flatten() @ unit) * unit
            delta[i] = (delta[i].flatten() - 0.5 * parallel).reshape(delta[i].shape)
        scale = 3.0 if level == levels - 1 else 8.0
        expected.append(pu + scale * delta.permute(0, 2, 1, 3, 4).reshape(pc.shape))
    torch.testing.assert_close(out, reconstruct(expected).reshape(2, 2, 4, 8, 8).permute(0, 2, 1, 3, 4),
                               rtol=1e-4, atol=1e-4)
