"""ICG (Sadat et al., ICLR 2025, arXiv 2407.02687): the uncond pass runs on a condition drawn independently of the
sample instead of the negative prompt, so CFG works from the conditional model alone:
D = D(x, c_hat) + w (D(x, c) - D(x, c_hat)).

c_hat is the paper's Gaussian variant: for every positive conditioning entry, the text embedding (and the pooled
embedding, where the model takes one in 'y') is replaced by mean + std * n with each sample's own mean and std of the
real embedding, n drawn per sample and per model call (Algorithm 1 draws c_hat inside the sampling loop). Everything
else of the positive entry (area, mask, ControlNet, size embeddings, Flux guidance, reference latents) is kept, so
the two passes still run batched in one model call. The negative prompt is not used.
"""
from __future__ import annotations

import uuid

import torch

from ..core.icg import independent_condition
from .main_call import MainCallHook
from .sample_noise import SampleNoise, sample_noise

NAME = "ICG (Guidance Zoo)"


def _per_sample(real: torch.Tensor, batch: int) -> torch.Tensor:
    """A [1 or batch, ...] conditioning tensor as [batch, ...] rows."""
    return real if real.shape[0] == batch else real[torch.arange(batch) % real.shape[0]]


def padding_free(text: torch.Tensor) -> torch.Tensor | None:
    """The tokens of a (B, tokens, C) text embedding that are not all-zero padding (Flux2 pads to 512 tokens), or
    None when there is no such padding."""
    if text.ndim != 3:
        return None
    valid = text.abs().amax(dim=-1) > 0
    return None if bool(valid.all()) or not bool(valid.any(dim=1).all()) else valid


def random_condition(real: torch.Tensor, batch: int, noise: SampleNoise, stream: str,
                     columns: int | None = None) -> torch.Tensor:
    """[batch, ...] independent conditions for a real one; with `columns`, only its first columns (a pooled part)."""
    rows = _per_sample(real, batch)
    part = rows if columns is None else rows[:, :columns]
    valid = padding_free(part)
    random = independent_condition(part, noise.batch(batch, tuple(part.shape[1:]), part.device, stream), valid)
    return random if columns is None else torch.cat([random, rows[:, columns:]], dim=1)


def independent_entries(positive: list[dict], batch: int, noise: SampleNoise) -> list[dict]:
    """Copies of the positive conditioning entries with the text (and pooled) embedding made independent."""
    entries = []
    for k, entry in enumerate(positive):
        model_conds = dict(entry["model_conds"])
        text = model_conds.get("c_crossattn")
        if text is None:
            raise RuntimeError(f"{NAME}: this model's conditioning has no text embedding (c_crossattn) to replace")
        model_conds["c_crossattn"] = text._copy_with(random_condition(text.cond, batch, noise, f"text{k}"))
        pooled, y = entry.get("pooled_output"), model_conds.get("y")
        if isinstance(pooled, torch.Tensor) and y is not None and y.cond.ndim == 2 \
                and y.cond.shape[1] >= pooled.shape[-1]:
            model_conds["y"] = y._copy_with(random_condition(y.cond, batch, noise, f"pooled{k}", pooled.shape[-1]))
        entries.append(dict(entry, model_conds=model_conds, uuid=uuid.uuid4()))
    return entries


class ICG(MainCallHook):
    def main_call(self, executor, model, conds, x, timestep, model_options, state):
        if conds[1] is None:
            return executor(model, conds, x, timestep, model_options)
        noise = sample_noise(model_options, self, x, "icg")
        uncond = independent_entries(conds[0], x.shape[0], noise)
        return executor(model, [conds[0], uncond] + conds[2:], x, timestep, model_options)
