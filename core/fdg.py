"""Frequency-Decoupled Guidance kernels (Sadat et al., 2025, arXiv 2506.19713)."""
import torch
import torch.nn.functional as F

from .apg import apg_project

_BINOMIAL = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0


def _blur(x: torch.Tensor) -> torch.Tensor:
    kernel = (_BINOMIAL[:, None] * _BINOMIAL[None, :]).to(x)[None, None].repeat(x.shape[1], 1, 1, 1)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), kernel, groups=x.shape[1])


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Gaussian blur then 2x decimation."""
    return _blur(x)[..., ::2, ::2]


def pyr_up(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Zero-insertion 2x upsampling then Gaussian blur (gain 4), to an exact size."""
    up = torch.zeros(x.shape[:2] + (x.shape[2] * 2, x.shape[3] * 2), dtype=x.dtype, device=x.device)
    up[..., ::2, ::2] = x * 4.0
    return _blur(up)[..., :size[0], :size[1]]


def laplacian_pyramid(x: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """Band-pass levels, finest first, and the low-pass residual last; x is (N, C, H, W), H and W any size."""
    bands, current = [], x
    for _ in range(levels - 1):
        down = pyr_down(current)
        bands.append(current - pyr_up(down, current.shape[-2:]))
        current = down
    return bands + [current]


def reconstruct(pyramid: list[torch.Tensor]) -> torch.Tensor:
    """Inverse of laplacian_pyramid (exact)."""
    image = pyramid[-1]
    for band in reversed(pyramid[:-1]):
        image = band + pyr_up(image, band.shape[-2:])
    return image


def _frames(x: torch.Tensor) -> tuple[torch.Tensor, tuple]:
    if x.ndim == 5:
        b, c, t, h, w = x.shape
        return x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w), (b, c, t, h, w)
    return x, ()


def _unframes(x: torch.Tensor, shape: tuple) -> torch.Tensor:
    if not shape:
        return x
    b, t = shape[0], shape[2]
    return x.reshape(b, t, *x.shape[1:]).permute(0, 2, 1, 3, 4)


def fdg(cond: torch.Tensor, uncond: torch.Tensor, scales: list[float], parallel_weights: list[float]) -> torch.Tensor:
    """FDG (arXiv 2506.19713): CFG per Laplacian-pyramid level (finest first), optional APG-style parallel weights.

    Video latents (B, C, T, H, W) are decomposed per frame; the projection stays per sample over all its frames.
    """
    c, shape = _frames(cond.float())
    u, _ = _frames(uncond.float())
    levels = []
    for level, (pc, pu) in enumerate(zip(laplacian_pyramid(c, len(scales)), laplacian_pyramid(u, len(scales)))):
        delta = pc - pu
        if parallel_weights[level] != 1.0:
            projected = apg_project(_unframes(delta, shape), _unframes(pc, shape), parallel_weights[level])
            delta = _frames(projected)[0]
        levels.append(pu + scales[level] * delta)
    return _unframes(reconstruct(levels), shape).to(cond.dtype)
