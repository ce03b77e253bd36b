"""Deterministic random weights for ComfyUI modules (comfy.ops skips weight init, leaving torch.empty garbage)."""
import math

import torch


def init_random_(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Fill every parameter, and SD3's uninitialised pos_embed buffer, from a seeded generator."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim >= 2:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel()))
            elif name.endswith("bias"):
                p.copy_(torch.randn(p.shape, generator=g) * 0.02)
            else:
                p.copy_(1.0 + torch.randn(p.shape, generator=g) * 0.02)
        for name, b in module.named_buffers():
            if name.endswith("pos_embed") and b.dtype.is_floating_point:
                b.copy_(torch.randn(b.shape, generator=g) * 0.02)
    return module
