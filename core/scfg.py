"""Semantic-aware CFG kernels (Shen et al., CVPR 2024, arXiv 2404.05384): attention-derived region masks and the
spatial CFG rate map. Shapes: q, k are (B, heads, N, D); cross-attention maps are (B, N, T) or (B, T, h, w)."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

SSGC_STEPS = 4


def head_mean_attention_times(q: torch.Tensor, k: torch.Tensor, scale: float, rhs: torch.Tensor,
                              chunk: int = 512) -> torch.Tensor:
    """S-CFG (arXiv 2404.05384): mean over heads of softmax(q k^T scale), times rhs (B, M, T), in query chunks.

    Only a (B, heads, chunk, M) block of probabilities exists at a time, never the N x M map of the whole layer.
    """
    q, k, rhs = q.float(), k.float(), rhs.float()
    out = torch.empty(q.shape[0], q.shape[2], rhs.shape[-1], dtype=torch.float32, device=q.device)
    for start in range(0, q.shape[2], chunk):
        rows = slice(start, start + chunk)
        probs = torch.softmax(torch.einsum("bhnd,bhmd->bhnm", q[:, :, rows], k) * scale, dim=-1)
        out[:, rows] = torch.einsum("bhnm,bmt->bnt", probs, rhs) / q.shape[1]
    return out


def cross_attention_probs(q: torch.Tensor, k: torch.Tensor, scale: float, chunk: int = 512) -> torch.Tensor:
    """S-CFG (arXiv 2404.05384): head-averaged cross-attention probabilities (B, N, T), in query chunks."""
    q, k = q.float(), k.float()
    out = torch.empty(q.shape[0], q.shape[2], k.shape[2], dtype=torch.float32, device=q.device)
    for start in range(0, q.shape[2], chunk):
        rows = slice(start, start + chunk)
        out[:, rows] = torch.softmax(torch.einsum("bhnd,bhmd->bhnm", q[:, :, rows], k) * scale, dim=-1).mean(1)
    return out


def ssgc_cross_attention(q_self: torch.Tensor, k_self: torch.Tensor, scale: float, cross: torch.Tensor,
                         steps: int = SSGC_STEPS, chunk: int = 512) -> torch.Tensor:
    """S-CFG (arXiv 2404.05384) SSGC smoothing S @ CA with S = (A + (steps - 1) A^2) / steps, A the head-averaged
    self-attention map (the official loop adds A @ A each time), computed as A @ CA and A @ (A @ CA) chunkwise."""
    once = head_mean_attention_times(q_self, k_self, scale, cross, chunk)
    if steps == 1:
        return once
    twice = head_mean_attention_times(q_self, k_self, scale, once, chunk)
    return (once + (steps - 1) * twice) / steps


def official_gaussian_kernel(size: int = 3, sigma: float = 0.5) -> torch.Tensor:
    """S-CFG's (arXiv 2404.05384) 2-D smoothing kernel as its code builds it: exp(-((x - mean) / (2 sigma))^2) per
    axis (a Gaussian of standard deviation sigma * sqrt(2)), normalised to sum 1."""
    x = torch.arange(size, dtype=torch.float32) - (size - 1) / 2
    axis = torch.exp(-(x / (2 * sigma)) ** 2) / (sigma * math.sqrt(2 * math.pi))
    kernel = axis[:, None] * axis[None, :]
    return kernel / kernel.sum()


def smooth(maps: torch.Tensor, size: int = 3, sigma: float = 0.5) -> torch.Tensor:
    """S-CFG (arXiv 2404.05384): reflect-padded smoothing of every channel of (B, C, h, w) maps."""
    b, c, h, w = maps.shape
    kernel = official_gaussian_kernel(size, sigma).to(maps.device, torch.float32)[None, None]
    flat = F.pad(maps.float().reshape(b * c, 1, h, w), (size // 2,) * 4, mode="reflect")
    return F.conv2d(flat, kernel).reshape(b, c, h, w)


def region_masks(layer_maps: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """S-CFG (arXiv 2404.05384) token region masks (B, T, h, w) and foreground mask (B, 1, h, w) from the per-layer
    smoothed cross-attention maps (B, T, h_l, w_l); coarser layers are upsampled bilinearly to the finest grid.

    Per layer: Gaussian smoothing, then each token map is divided by its spatial mean; layers are averaged. A pixel
    belongs to the token(s) with the largest value; it is foreground unless token 0 (the start token) wins against
    the sum of all other tokens.
    """
    grid = max((m.shape[-2:] for m in layer_maps), key=lambda s: s[0] * s[1])
    tokens = torch.zeros((layer_maps[0].shape[0], layer_maps[0].shape[1]) + tuple(grid), device=layer_maps[0].device)
    fore = torch.zeros((layer_maps[0].shape[0], 2) + tuple(grid), device=layer_maps[0].device)
    for maps in layer_maps:
        maps = maps.float()
        if tuple(maps.shape[-2:]) != tuple(grid):
            maps = F.interpolate(maps, size=tuple(grid), mode="bilinear")
        maps = smooth(maps)
        tokens += maps / (maps.mean(dim=(2, 3), keepdim=True) + 1e-8)
        start_vs_rest = torch.stack([maps[:, 0], maps[:, 1:].sum(dim=1)], dim=1)
        fore += start_vs_rest / start_vs_rest.mean(dim=(2, 3), keepdim=True)
    tokens, fore = tokens / len(layer_maps), fore / len(layer_maps)
    token_masks = (tokens == tokens.amax(dim=1, keepdim=True)).float()
    fore_mask = 1.0 - (fore == fore.amax(dim=1, keepdim=True)).float()[:, :1]
    return token_masks, fore_mask


def rate_map(delta: torch.Tensor, token_masks: torch.Tensor, fore_mask: torch.Tensor, scale: float,
             min_rate: float = 0.8, max_rate: float = 3.0, max_guidance: float = 15.0) -> torch.Tensor:
    """S-CFG (arXiv 2404.05384) rate R (B, 1, H, W) for D = D_u + scale * R * (D_c - D_u), from delta = D_c - D_u.

    Masks are upsampled (nearest) to the latent grid. With N the per-pixel L2 norm of delta over channels, each token
    region k gets rate_k = mean(N | foreground) / mean(N | region k); R = sum_k rate_k M_k, clamped to
    [min_rate, max_rate] and to max_guidance / scale, then smoothed.
    """
    size = tuple(delta.shape[-2:])
    masks = F.interpolate(token_masks.float(), size=size, mode="nearest")
    fore = F.interpolate(fore_mask.float(), size=size, mode="nearest")
    norm = delta.float().norm(dim=1, keepdim=True)
    region_norm = (norm * masks).sum(dim=(2, 3)) / (masks.sum(dim=(2, 3)) + 1e-8)
    fore_norm = (norm * fore).sum(dim=(2, 3)) / (fore.sum(dim=(2, 3)) + 1e-8)
    present = (masks.sum(dim=(2, 3)) > 0).float()
    rate = fore_norm * present / (region_norm + 1e-8)
    rate_pixels = (rate[:, :, None, None] * masks).sum(dim=1, keepdim=True)
    rate_pixels = rate_pixels.clamp(min_rate, max_rate)
    if scale > 0:
        rate_pixels = rate_pixels.clamp(max=max_guidance / scale)
    return smooth(rate_pixels)
