"""PLADIS's fast kernels: the Newton thresholds give the sorted rules' weights on every kind of row (flat, peaky,
tied, masked), unsettled rows fall back to sorting, and both sources of the joint variant's text mass (the CPU flash
kernel's log-sum-exp, the marker value channel) give the full-matrix formula, masks and residual_only included."""
import pytest
import torch

import guidance_zoo.core.entmax as entmax
import guidance_zoo.core.pladis as pladis
from guidance_zoo.core.entmax import rule_weights, sparse_weights
from guidance_zoo.core.pladis import joint_pladis_attention, pladis_attention


def fast(z: torch.Tensor, alpha: float) -> torch.Tensor:
    """rule_weights of a copy (it shifts its input's rows in place)."""
    return rule_weights(z.clone(), alpha)


def rows_of_every_kind(width: int) -> torch.Tensor:
    """Gaussian rows of several spreads, peaky rows, rows with ties, rows with masked (-inf) logits."""
    g = torch.Generator().manual_seed(width)
    parts = [torch.randn(300, width, generator=g) * spread for spread in (0.01, 0.3, 1.0, 3.0, 10.0)]
    peaky = torch.randn(300, width, generator=g)
    peaky[:, : max(1, width // 20)] += 6
    tied = torch.randint(0, 4, (300, width), generator=g).float()
    masked = torch.randn(300, width, generator=g) * 2
    masked[torch.rand(300, width, generator=g) < 0.3] = float("-inf")
    masked[:, 0] = 0.0
    return torch.cat(parts + [peaky, tied, masked])


@pytest.mark.parametrize("alpha", [1.5, 2.0])
@pytest.mark.parametrize("width", [1, 7, 154, 333])
def test_newton_thresholds_give_the_sorted_rules_weights(alpha, width):
    z = rows_of_every_kind(width)
    torch.testing.assert_close(fast(z, alpha), sparse_weights(z, alpha), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("alpha", [1.5, 2.0])
def test_rows_left_unsettled_are_sorted(alpha, monkeypatch):
    z = rows_of_every_kind(77).view(8, 300, 77)
    z[0, 0] = float("-inf")  # a fully masked row: the sorted rule's uniform weights
    monkeypatch.setitem(entmax.NEWTON_STEPS, alpha, 0)
    torch.testing.assert_close(fast(z, alpha), sparse_weights(z, alpha), atol=1e-6, rtol=1e-5)


def test_other_alphas_use_bisection():
    z = rows_of_every_kind(20)
    torch.testing.assert_close(fast(z, 1.3), sparse_weights(z, 1.3))


def reference_joint(q, k, v, scale, lam, alpha, text, mask):
    """The joint variant from full float64 matrices: image rows' text part = mass * (lam rule + (1 - lam) softmax)."""
    scores = (q.double() @ k.double().transpose(-1, -2)) * scale + mask.double()
    weights = torch.softmax(scores, -1)
    image = torch.ones(q.shape[2], dtype=torch.bool)
    image[text] = False
    rows = weights[:, :, image]
    text_scores = scores[:, :, image][..., text]
    mass = rows[..., text].sum(-1, keepdim=True)
    rows[..., text] = mass * (lam * sparse_weights(text_scores, alpha).double() + (1 - lam) * torch.softmax(text_scores,
                                                                                                             -1))
    weights[:, :, image] = rows
    return (weights @ v.double()).float()


def joint_inputs(text: slice):
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(2, 3, 40, 16, generator=g) for _ in range(3))
    mask = torch.zeros(2, 1, 1, 40)
    mask[0, ..., text.start + 1] = float("-inf")
    mask[1, ..., 30:33] = -50.0
    return q * 2, k, v, mask


@pytest.mark.parametrize("flash", [True, False])
@pytest.mark.parametrize("alpha", [1.5, 2.0])
@pytest.mark.parametrize("text", [slice(0, 9), slice(31, 40)])
def test_joint_variant_with_a_mask_from_either_text_mass_source(flash, alpha, text, monkeypatch):
    if not flash:
        monkeypatch.setattr(pladis, "_cpu_flash", lambda *tensors: False)
    q, k, v, mask = joint_inputs(text)
    out = joint_pladis_attention(q, k, v, 0.25, 2.0, alpha, text, mask, chunk=7)
    torch.testing.assert_close(out, reference_joint(q, k, v, 0.25, 2.0, alpha, text, mask), atol=1e-5, rtol=1e-5)
    change = joint_pladis_attention(q, k, v, 0.25, 2.0, alpha, text, mask, residual_only=True)
    plain = torch.softmax(q @ k.transpose(-1, -2) * 0.25 + mask, -1) @ v
    torch.testing.assert_close(plain + change, out, atol=1e-5, rtol=1e-5)


def test_joint_variant_in_half_precision_stays_near_fp32():
    q, k, v, mask = joint_inputs(slice(0, 9))
    full = joint_pladis_attention(q, k, v, 0.25, 2.0, 1.5, slice(0, 9), mask)
    half = joint_pladis_attention(q.half(), k.half(), v.half(), 0.25, 2.0, 1.5, slice(0, 9), mask.half())
    assert half.dtype == torch.float16
    torch.testing.assert_close(half.float(), full, atol=2e-2, rtol=2e-2)


@pytest.mark.parametrize("residual_only", [False, True])
def test_cross_variant_with_a_mask_equals_its_formula(residual_only):
    g = torch.Generator().manual_seed(4)
    q, k, v = torch.randn(2, 3, 30, 8, generator=g) * 2, torch.randn(2, 3, 11, 8, generator=g), torch.randn(
        2, 3, 11, 8, generator=g)
    mask = torch.zeros(2, 1, 30, 11)
    mask[:, :, :, 4] = float("-inf")
    scores = q @ k.transpose(-1, -2) * 0.4 + mask
    dense = torch.softmax(scores, -1)
    weights = 2.0 * (sparse_weights(scores, 1.5) - dense) + (0 if residual_only else dense)
    out = pladis_attention(q, k, v, 0.4, 2.0, 1.5, mask, residual_only, chunk=8)
    torch.testing.assert_close(out, weights @ v, atol=1e-5, rtol=1e-5)
