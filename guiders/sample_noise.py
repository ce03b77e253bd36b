"""Seeded per-sample noise for methods that draw random tensors during sampling (ICG, TSG).

Each sample gets its own generator, seeded from a fingerprint of that sample's latent at the first model call of the
run (so from the sampler's seed and the input latent), the model-call index and a salt. A sample therefore draws the
same numbers whatever batch it runs in (batch 2 equals two batch-1 runs), the same seed repeats exactly, and the
global RNG is never touched.
"""
from __future__ import annotations

import hashlib

import torch

from ..core.run_state import run_state

_KEY = "guidance_zoo_sample_fingerprints"


def _digest(*parts: bytes) -> int:
    h = hashlib.blake2b(digest_size=8)
    for part in parts:
        h.update(part)
    return int.from_bytes(h.digest(), "little") & ((1 << 63) - 1)


class SampleNoise:
    """Per-sample generators for one model call: normal(i, shape, stream) draws sample i's numbers of a stream."""

    def __init__(self, fingerprints: list[int], call: int, salt: str):
        self.fingerprints, self.call, self.salt = fingerprints, call, salt

    def normal(self, index: int, shape: tuple[int, ...], device, stream: str = "") -> torch.Tensor:
        seed = _digest(self.fingerprints[index].to_bytes(8, "little"), self.call.to_bytes(8, "little"),
                       f"{self.salt}/{stream}".encode())
        generator = torch.Generator(device="cpu").manual_seed(seed)
        return torch.randn(shape, generator=generator, dtype=torch.float32).to(device)

    def batch(self, count: int, shape: tuple[int, ...], device, stream: str = "") -> torch.Tensor:
        """[count, *shape] in fp32: one draw per sample (sample i of the call's batch)."""
        return torch.stack([self.normal(i, shape, device, stream) for i in range(count)])


def sample_noise(model_options: dict, owner: object, x: torch.Tensor, salt: str) -> SampleNoise:
    """The generators of this model call; the first call of a run fingerprints each sample of x."""
    state = run_state(model_options, owner)
    fingerprints = state.get(_KEY)
    if fingerprints is None or len(fingerprints) != x.shape[0]:
        rows = x.detach().float().cpu().contiguous()
        fingerprints = [_digest(row.numpy().tobytes()) for row in rows]
        state[_KEY] = fingerprints
    call = state.get("noise_calls", 0)
    state["noise_calls"] = call + 1
    return SampleNoise(fingerprints, call, salt)
