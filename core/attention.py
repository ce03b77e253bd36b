"""Attention kernels shared by the attention methods: additive masks and row-chunked softmax attention."""
import torch
import torch.nn.functional as F

def additive_mask(mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """An attention mask as a 4-D additive float mask (boolean True = attend)."""
    if mask is None:
        return None
    if mask.dtype == torch.bool:
        mask = torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(~mask, float("-inf"))
    while mask.ndim < 4:
        mask = mask.unsqueeze(0 if mask.ndim == 2 else 1)
    return mask.to(dtype)


def chunked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float,
                      mask: torch.Tensor | None = None, chunk: int = 1024) -> torch.Tensor:
    """Softmax attention over (B, H, N, D), query rows in chunks so memory stays O(chunk * N)."""
    out = torch.empty(q.shape[:-1] + (v.shape[-1],), dtype=v.dtype, device=v.device)
    for start in range(0, q.shape[2], chunk):
        rows = slice(start, start + chunk)
        part_mask = None if mask is None else mask[:, :, rows] if mask.shape[2] > 1 else mask
        out[:, :, rows] = F.scaled_dot_product_attention(q[:, :, rows], k, v, attn_mask=part_mask, scale=scale)
    return out
