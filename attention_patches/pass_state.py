"""The bookkeeping of one perturbed model call: which layer is running, which batch rows carry the perturbed cond,
how often the pass reached its layers."""
from __future__ import annotations

import torch

import comfy.patcher_extension

from .layers import Layer
from .per_thread import PerThread

GENERATED_KEY = "guidance_zoo_generated_tokens"


class PassState:
    """Bookkeeping of one perturbed model call; chunk is the index of the perturbed cond, None for all rows. What a
    forward writes as it runs is per thread (ComfyUI's multi-GPU split runs forwards at once); hits is shared."""
    current = PerThread()             # the block running now (a Layer), None between blocks
    calls = PerThread(0)              # attention calls seen in the running block (Lumina2: in the forward)
    text_len = PerThread(0)
    image_len = PerThread()           # Lumina2: image tokens before any padding tokens
    generated_len = PerThread()       # edit models: the image tokens the forward generates (reference tokens follow)

    def __init__(self, targets: set[Layer], chunk: int | None = None):
        self.targets = targets
        self.chunk = chunk
        self.hits = 0
        self._rows: dict[tuple, tuple[torch.Tensor | None, bool]] = {}

    def rows(self, cond_or_uncond: list | None, batch: int, device: torch.device) -> tuple[torch.Tensor | None, bool]:
        """(boolean mask of the perturbed cond's batch rows in this call, None for every row; whether any row is
        perturbed), made once per call layout instead of per layer."""
        if self.chunk is None:
            return None, True
        chunks = tuple(cond_or_uncond or ())
        key = (chunks, batch, device)
        if key not in self._rows:
            flags = [c == self.chunk for c in chunks]
            mask = torch.tensor(flags, dtype=torch.bool, device=device).repeat_interleave(batch // max(len(chunks), 1))
            self._rows[key] = mask, any(flags)
        return self._rows[key]


def count_generated(family, state, transformer_options: dict) -> None:
    """Edit-model families (reference_latents): a DIFFUSION_MODEL wrapper recording each forward's generated image
    tokens in state (a PassState, or the negative-context hook's CallState), so that the reference-latent tokens the
    model appends after them are known; nothing for the other families."""
    if not family.reference_latents:
        return

    def wrapper(executor, *args, **kwargs):
        state.generated_len = family.generated_tokens(executor.class_obj, args[0] if args else kwargs["x"])
        return executor(*args, **kwargs)
    comfy.patcher_extension.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.DIFFUSION_MODEL, GENERATED_KEY,
                                                 wrapper, transformer_options)
