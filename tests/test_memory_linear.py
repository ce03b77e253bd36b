"""Memory linear in tokens (issue 15): PLADIS, ASAG, S-CFG, SEG with a finite blur and NAG at 4096 and 16384 image
tokens (small widths). A probe (tests/memory_probe.py) sees every tensor the kernels make: none is N x N, and the
peak of the bytes alive at once grows about linearly (4x tokens: at most 5x memory; a quadratic kernel gives 16x).
Memory, not time: nothing here is timed."""
import pytest
import torch

from memory_probe import MemoryProbe

from guidance_zoo.core.asag import sinkhorn_attention
from guidance_zoo.core.nag import nag_blend
from guidance_zoo.core.pladis import pladis_attention
from guidance_zoo.core.scfg import ssgc_cross_attention
from guidance_zoo.core.seg import seg_attention

HEADS, DIM, TEXT = 2, 8, 16


def qkv(tokens: int):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(1, HEADS, tokens, DIM, generator=g) for _ in range(3)]


def grid(tokens: int) -> tuple[int, int]:
    side = int(tokens ** 0.5)
    return side, tokens // side


KERNELS = {
    "pladis": lambda q, k, v, n: pladis_attention(q, k, v, DIM ** -0.5, 2.0, 1.5),
    "asag": lambda q, k, v, n: sinkhorn_attention(q, k, v, DIM ** -0.5),
    "scfg_ssgc": lambda q, k, v, n: ssgc_cross_attention(q, k, DIM ** -0.5, torch.rand(1, n, TEXT)),
    "seg_finite_blur": lambda q, k, v, n: seg_attention(q, k, v, DIM ** -0.5, 10.0, slice(0, n), grid(n)),
    "nag": lambda q, k, v, n: nag_blend(q.transpose(1, 2).flatten(2), k.transpose(1, 2).flatten(2), 5.0, 2.5, 0.25),
}


def probe(kernel, tokens: int) -> MemoryProbe:
    q, k, v = qkv(tokens)
    with torch.no_grad(), MemoryProbe() as seen:
        out = kernel(q, k, v, tokens)
    assert torch.isfinite(out).all()
    return seen


@pytest.mark.parametrize("name", KERNELS)
def test_memory_grows_linearly_in_tokens_and_no_n_by_n_tensor_is_made(name):
    small, large = (probe(KERNELS[name], n) for n in (4096, 16384))
    print(f"{name}: peak {small.peak_bytes / 2**20:.1f} -> {large.peak_bytes / 2**20:.1f} MiB, largest tensor "
          f"{small.largest} -> {large.largest} elements")
    assert large.largest < 16384 * 16384 // 4
    assert large.peak_bytes <= 5 * small.peak_bytes


def test_the_probe_sees_a_quadratic_kernel():
    """The check above would fail on plain (unchunked) attention: its 16384 x 16384 map."""
    def full(q, k, v, n):
        return torch.softmax(q @ k.transpose(-1, -2) * DIM ** -0.5, dim=-1) @ v
    small, large = (probe(full, n) for n in (2048, 8192))
    assert large.largest >= HEADS * 8192 * 8192 and large.peak_bytes > 10 * small.peak_bytes
