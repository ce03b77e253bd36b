"""CFG++ step kernels (Chung et al., ICLR 2025, arXiv 2406.08070), in ComfyUI's x = alpha * x0 + sigma * eps form.

alpha is the signal scale of the sampler's x: 1 for EPS/V models (ComfyUI's VE form x = x0 + sigma * eps) and
1 - sigma for flow models (x = (1 - sigma) x0 + sigma * eps). `guided` is the CFG output D_lambda (KSampler cfg used
as lambda), `uncond` the unconditional prediction D_u; CFG++ steps to the next level with D_lambda but renoises
with the unconditional noise eps_u = (x - alpha * D_u) / sigma.
"""
import math

import torch


def signal_scale(sigma: float, flow: bool) -> float:
    """CFG++ (arXiv 2406.08070) alpha(sigma): 1 - sigma for flow (CONST) models, 1 for EPS/V models in VE form."""
    return 1.0 - sigma if flow else 1.0


def half_log_snr(sigma: float, flow: bool) -> float:
    """CFG++ (arXiv 2406.08070) DPM-Solver time lambda = log(alpha / sigma); -inf where alpha is 0, +inf at sigma 0."""
    alpha = signal_scale(sigma, flow)
    if sigma <= 0:
        return math.inf
    if alpha <= 0:
        return -math.inf
    return math.log(alpha) - math.log(sigma)


def unconditional_noise(x: torch.Tensor, uncond: torch.Tensor, sigma: float, alpha: float) -> torch.Tensor:
    """CFG++ (arXiv 2406.08070) eps_u = (x - alpha * D_u) / sigma, the noise CFG++ renoises with."""
    return (x - alpha * uncond) / sigma


def ancestral_split(sigma: float, sigma_next: float, alpha: float, alpha_next: float,
                    eta: float) -> tuple[float, float]:
    """CFG++ (arXiv 2406.08070) DDIM-eta split of the next noise level into (deterministic, fresh) parts.

    Same as k-diffusion's get_ancestral_step on the VE-scaled levels sigma / alpha, written with the ratio so that
    alpha = 0 (flow models at sigma 1) gives the limit instead of inf / inf.
    """
    if eta <= 0:
        return sigma_next, 0.0
    ratio = (sigma_next * alpha) / (sigma * alpha_next)
    fresh = min(sigma_next, eta * sigma_next * math.sqrt(max(0.0, 1.0 - ratio * ratio)))
    return math.sqrt(max(0.0, sigma_next * sigma_next - fresh * fresh)), fresh


def ddim_step(x: torch.Tensor, guided: torch.Tensor, uncond: torch.Tensor, sigma: float, sigma_next: float,
              alpha: float, alpha_next: float, eta: float = 0.0, s_noise: float = 1.0,
              noise: torch.Tensor | None = None) -> torch.Tensor:
    """CFG++ (arXiv 2406.08070) Alg. 1 DDIM step: x' = alpha' D_lambda + sqrt(sigma'^2 - c^2) eps_u + c s_noise z.

    eta = 0 is the paper's deterministic DDIM CFG++ (= Euler CFG++); eta > 0 the ancestral form (c = DDIM's
    sigma_eta). At sigma_next = 0 it returns D_lambda. fp32 math, cast back to x's dtype.
    """
    if sigma_next <= 0:
        return guided.to(x.dtype)
    xf, gf, uf = x.float(), guided.float(), uncond.float()
    keep, fresh = ancestral_split(sigma, sigma_next, alpha, alpha_next, eta)
    out = alpha_next * gf + keep * unconditional_noise(xf, uf, sigma, alpha)
    if fresh > 0 and s_noise > 0 and noise is not None:
        out = out + (fresh * s_noise) * noise.float()
    return out.to(x.dtype)


def dpmpp_2m_step(x: torch.Tensor, guided: torch.Tensor, uncond: torch.Tensor, old_uncond: torch.Tensor | None,
                  sigma: float, sigma_next: float, flow: bool, h_last: float | None) -> tuple[torch.Tensor, float]:
    """CFG++ (arXiv 2406.08070) DPM-Solver++(2M) step in data-prediction form with alpha factors; returns (x', h).

    x' = (sigma'/sigma) x + alpha' (D_lambda - e^-h D_u) + alpha' (1 - e^-h) (h / (2 h_last)) (D_lambda - D_u,prev),
    h = lambda' - lambda. With alpha = 1 this is the official/ComfyUI dpmpp_2m_cfg_pp; the first step (no history)
    is the Euler CFG++ step; at sigma_next = 0 it returns D_lambda.
    """
    lam, lam_next = half_log_snr(sigma, flow), half_log_snr(sigma_next, flow)
    h = lam_next - lam
    if sigma_next <= 0:
        return guided.to(x.dtype), h
    alpha, alpha_next = signal_scale(sigma, flow), signal_scale(sigma_next, flow)
    decay = (sigma_next * alpha) / (sigma * alpha_next)  # e^-h, finite where lambda is -inf
    xf, gf, uf = x.float(), guided.float(), uncond.float()
    out = (sigma_next / sigma) * xf + alpha_next * (gf - decay * uf)
    if old_uncond is not None and h_last is not None:
        weight = 0.0 if math.isinf(h_last) else h / (2.0 * h_last)
        out = out + (alpha_next * (1.0 - decay) * weight) * (gf - old_uncond.float())
    return out.to(x.dtype), h
