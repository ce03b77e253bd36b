"""Fast unit tests of core/ kernels on fixed tensors: formulas computed independently here, no ComfyUI."""
import os
import subprocess
import sys

import pytest
import torch

from guidance_zoo.core.apg import apg_denoised, apg_guidance
from guidance_zoo.core.cfg import cond_for_linear_cfg
from guidance_zoo.core.attention import additive_mask
from guidance_zoo.core.pag import joint_identity_attention, pag_extrapolate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHAPES = [(2, 4, 8, 8), (2, 16, 3, 8, 8)]


def test_core_imports_no_comfyui():
    code = ("import sys, importlib.util; sys.path.insert(0, 'harness'); import runtime_paths; "
            "runtime_paths.register_pack(); import pkgutil, guidance_zoo.core as c; "
            "[importlib.import_module('guidance_zoo.core.' + m.name) for m in pkgutil.iter_modules(c.__path__)]; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('comfy', 'comfy_api', 'comfy_extras', 'nodes')]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def paper_apg(cond, uncond, w, eta, r, beta, running):
    """APG Algorithm 1 written out per sample with flattened vectors (fp64)."""
    outs, new_running = [], []
    for i in range(cond.shape[0]):
        c, g = cond[i].double().flatten(), (cond[i] - uncond[i]).double().flatten()
        m = g + beta * (running[i].double().flatten() if running is not None else 0)
        new_running.append(m.reshape(cond[i].shape))
        g = m
        if r > 0:
            g = g * min(1.0, r / g.norm().item())
        unit = c / c.norm()
        par = (g @ unit) * unit
        outs.append((c + (w - 1) * ((g - par) + eta * par)).reshape(cond[i].shape))
    return torch.stack(outs).float(), torch.stack(new_running).float()


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("eta,r,beta", [(0.0, 15.0, -0.5), (0.3, 2.0, 0.0), (1.0, 0.0, -0.75)])
def test_apg_matches_paper_algorithm(shape, eta, r, beta):
    g = torch.Generator().manual_seed(0)
    cond, uncond = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    running = None
    for _step in range(3):
        guidance, buffer = apg_guidance(cond, uncond, eta, r, beta, running)
        expected, expected_running = paper_apg(cond, uncond, 6.0, eta, r, beta, running)
        torch.testing.assert_close(apg_denoised(cond, guidance, 6.0), expected, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(buffer, expected_running, rtol=1e-5, atol=1e-5)
        running = buffer
        cond, uncond = cond * 0.9 + 0.1, uncond * 0.8


@pytest.mark.parametrize("shape", SHAPES)
def test_apg_eta1_no_threshold_no_momentum_is_cfg(shape):
    g = torch.Generator().manual_seed(1)
    cond, uncond = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    guidance, _ = apg_guidance(cond, uncond, 1.0, 0.0, 0.0, None)
    torch.testing.assert_close(apg_denoised(cond, guidance, 7.0), uncond + 7.0 * (cond - uncond))


@pytest.mark.parametrize("shape", SHAPES)
def test_apg_has_no_batch_cross_talk(shape):
    g = torch.Generator().manual_seed(2)
    cond, uncond = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    cond[1] *= 50
    together, _ = apg_guidance(cond, uncond, 0.0, 5.0, 0.0, None)
    alone, _ = apg_guidance(cond[:1], uncond[:1], 0.0, 5.0, 0.0, None)
    torch.testing.assert_close(together[:1], alone)


def test_apg_projection_and_threshold_hold_per_sample_on_5d():
    g = torch.Generator().manual_seed(3)
    cond, uncond = torch.randn(2, 16, 3, 8, 8, generator=g), torch.randn(2, 16, 3, 8, 8, generator=g)
    guidance, _ = apg_guidance(cond, uncond, 0.0, 2.0, 0.0, None)
    for i in range(2):
        assert abs(float((guidance[i] * cond[i]).sum())) < 1e-3 * float(cond[i].norm() * guidance[i].norm())
        assert float(guidance[i].norm()) <= 2.0 + 1e-4


def test_apg_fp16_is_finite():
    cond = (torch.randn(2, 4, 8, 8) * 100).half()
    uncond = (torch.randn(2, 4, 8, 8) * 100).half()
    guidance, _ = apg_guidance(cond, uncond, 0.0, 15.0, -0.5, None)
    assert torch.isfinite(apg_denoised(cond, guidance, 12.0)).all()


def test_cond_for_linear_cfg_lands_on_target():
    g = torch.Generator().manual_seed(4)
    target, uncond = torch.randn(2, 4, 4, 4, generator=g), torch.randn(2, 4, 4, 4, generator=g)
    cond = cond_for_linear_cfg(target, uncond, 5.5)
    torch.testing.assert_close(uncond + 5.5 * (cond - uncond), target)


def test_pag_extrapolate_formula():
    d, c, p = torch.full((1, 4), 1.0), torch.full((1, 4), 3.0), torch.full((1, 4), 2.5)
    torch.testing.assert_close(pag_extrapolate(d, c, p, 2.0), torch.full((1, 4), 2.0))


def masked_reference(q, k, v, text_len, text_first, scale, mask=None):
    """Joint PAG written with the full N x N mask, as diffusers' PAGJointAttnProcessor describes it."""
    n = q.shape[2]
    img = torch.arange(text_len, n) if text_first else torch.arange(0, n - text_len)
    full = torch.zeros(n, n)
    block = full[img][:, img].fill_(float("-inf"))
    block.fill_diagonal_(0)
    full[img.unsqueeze(1), img.unsqueeze(0)] = block
    if mask is not None:
        full = full + additive_mask(mask, torch.float32)
    return torch.softmax(q @ k.transpose(-1, -2) * scale + full, dim=-1) @ v


@pytest.mark.parametrize("text_first", [True, False])
@pytest.mark.parametrize("chunk", [3, 4096])
def test_joint_identity_attention_matches_masked_attention(text_first, chunk):
    g = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(2, 3, 13, 8, generator=g) for _ in range(3))
    out = joint_identity_attention(q, k, v, 5, text_first, 8 ** -0.5, chunk=chunk)
    torch.testing.assert_close(out, masked_reference(q, k, v, 5, text_first, 8 ** -0.5), rtol=1e-5, atol=1e-5)


def test_joint_identity_attention_respects_a_padding_mask():
    g = torch.Generator().manual_seed(6)
    q, k, v = (torch.randn(1, 2, 10, 4, generator=g) for _ in range(3))
    keep = torch.ones(1, 1, 1, 10, dtype=torch.bool)
    keep[..., 2] = False
    out = joint_identity_attention(q, k, v, 4, True, 0.5, keep)
    torch.testing.assert_close(out, masked_reference(q, k, v, 4, True, 0.5, keep), rtol=1e-5, atol=1e-5)


def test_joint_identity_attention_without_text_is_identity():
    v = torch.randn(1, 2, 6, 4)
    out = joint_identity_attention(torch.randn(1, 2, 6, 4), torch.randn(1, 2, 6, 4), v, 0, True, 0.5)
    torch.testing.assert_close(out, v)
