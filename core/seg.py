"""Smoothed Energy Guidance kernels (Hong, NeurIPS 2024, arXiv 2408.00760): attention with blurred queries."""
import math

import torch
import torch.nn.functional as F

from .attention import chunked_attention

INFINITE_BLUR = 9999.0


def gaussian_kernel_size(sigma: float, limit: int) -> int:
    """SEG (arXiv 2408.00760): odd size ceil(6 sigma) + 1 - ceil(6 sigma) mod 2, clipped to an odd size <= limit."""
    size = math.ceil(6 * sigma) + 1 - math.ceil(6 * sigma) % 2
    return max(1, min(size, limit if limit % 2 else limit - 1))


def blur_queries(q: torch.Tensor, grid: tuple[int, int], sigma: float) -> torch.Tensor:
    """SEG (arXiv 2408.00760): separable Gaussian blur of (B, H, N, D) queries on their (h, w) token grid."""
    b, heads, n, d = q.shape
    h, w = grid
    image = q.permute(0, 1, 3, 2).reshape(b, heads * d, h, w).float()
    for axis, length in ((2, h), (3, w)):
        size = gaussian_kernel_size(sigma, length)
        if size == 1:
            continue
        x = torch.arange(size, dtype=torch.float32, device=q.device) - size // 2
        weights = torch.exp(-0.5 * (x / sigma) ** 2)
        weights = (weights / weights.sum()).view((1, 1) + ((size, 1) if axis == 2 else (1, size)))
        pad = (0, 0, size // 2, size // 2) if axis == 2 else (size // 2, size // 2, 0, 0)
        image = F.conv2d(F.pad(image, pad, mode="reflect"), weights.repeat(heads * d, 1, 1, 1), groups=heads * d)
    return image.reshape(b, heads, d, n).permute(0, 1, 3, 2).to(q.dtype)


def seg_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, sigma: float,
                  image: slice, grid: tuple[int, int] | None, mask: torch.Tensor | None = None) -> torch.Tensor:
    """SEG (arXiv 2408.00760): attention where the image tokens' queries are blurred; sigma >= 9999 is infinite blur
    (every image query becomes their mean, computed as one row). Other (text) rows keep their queries."""
    dtype = v.dtype
    q, k, v = q.float(), k.float(), v.float()
    if sigma < INFINITE_BLUR:
        if grid is None:
            raise ValueError("a finite blur needs the token grid, which this attention layer does not provide")
        blurred = q.clone()
        blurred[:, :, image] = blur_queries(q[:, :, image], grid, sigma)
        return chunked_attention(blurred, k, v, scale, mask).to(dtype)
    out = torch.empty_like(v)
    text = slice(image.stop, q.shape[2]) if image.start == 0 else slice(0, image.start)
    if text.start < text.stop:
        text_mask = None if mask is None else mask[:, :, text] if mask.shape[2] > 1 else mask
        out[:, :, text] = chunked_attention(q[:, :, text], k, v, scale, text_mask)
    mean = q[:, :, image].mean(dim=2, keepdim=True)
    if mask is None or mask.shape[2] == 1:
        row = chunked_attention(mean, k, v, scale, mask)
        out[:, :, image] = row.expand(-1, -1, out[:, :, image].shape[2], -1)
    else:
        out[:, :, image] = chunked_attention(mean.expand_as(q[:, :, image]), k, v, scale, mask[:, :, image])
    return out.to(dtype)
