"""TSG (Sadat et al., ICLR 2025, arXiv 2407.02687): the uncond pass is replaced by the cond pass with a perturbed
time-step embedding, D = D(x, t_emb~, c) + w (D(x, t_emb, c) - D(x, t_emb~, c)), t_emb~ = t_emb + s t^alpha std(t_emb) n
(App. G's power schedule, t in [0, 1], n per sample and per model call), only for diffusers timesteps in
[t_min, t_max]; outside that interval both passes are equal, so the uncond pass is skipped (the step is cond only).

Hook: the positive entries take the place of the negative in the step's batched cond/uncond call, and for that call an
APPLY_MODEL wrapper puts a PyTorch forward hook on the model's time-embedding module (the output of the MLP on
the sinusoidal features, before class/pooled/guidance embeddings are added) that perturbs the rows of the uncond
chunk only (prepended, so hooks of other packs see the perturbed embedding). The hook exists only while that call
runs; model code and forwards are untouched, and other hooks and wrappers keep running. The embedding is perturbed
where it is computed, so every block sees it (the paper perturbs it for the first N layers on its UNet/DiT settings).
"""
from __future__ import annotations

import math
import uuid

import torch

import comfy.model_patcher
import comfy.patcher_extension

from ..attention_patches.families import family_for, model_names
from ..core.tsg import perturbed_time_embedding
from ..core.run_steps import check_run, listed
from .main_call import MainCallHook, without_uncond
from .sample_noise import SampleNoise, sample_noise
from .schedule import diffusers_timestep

NAME = "TSG (Guidance Zoo)"
WRAPPER_KEY = "guidance_zoo_tsg"


def time_embedding_module(diffusion_model: torch.nn.Module, config_name: str = "") -> torch.nn.Module | None:
    """The module whose output is the time-step embedding of a diffusion model (its family adapter knows where), or
    None."""
    return family_for(diffusion_model, config_name).time_embedding(diffusion_model)


def _uncond_rows(cond_or_uncond: list, batch: int, rows: int, device) -> torch.Tensor:
    """Boolean mask of the embedding rows that belong to uncond chunks (index 1) of a batched call."""
    per_chunk = batch // max(len(cond_or_uncond), 1)
    flags = torch.tensor([c == 1 for c in cond_or_uncond for _ in range(per_chunk)], dtype=torch.bool, device=device)
    return flags.repeat_interleave(rows // batch)


class TSG(MainCallHook):
    def __init__(self, scale: float, alpha: float, t_min: float, t_max: float):
        self.scale, self.alpha, self.t_min, self.t_max = scale, alpha, t_min, t_max

    def main_call(self, executor, model, conds, x, timestep, model_options, state):
        if conds[1] is None:
            return executor(model, conds, x, timestep, model_options)
        check_run(model_options, self, lambda sigmas: self.idle_message(model, model_options, sigmas))
        t = diffusers_timestep(model, timestep, model_options)
        if not self.t_min <= t <= self.t_max:
            return without_uncond(executor, model, conds, x, timestep, model_options)
        noise = sample_noise(model_options, self, x, "tsg")
        copies = [dict(entry, uuid=uuid.uuid4()) for entry in conds[0]]
        hits = []
        options = comfy.model_patcher.create_model_options_clone(model_options)
        comfy.patcher_extension.add_wrapper_with_key(
            comfy.patcher_extension.WrappersMP.APPLY_MODEL, WRAPPER_KEY,
            self._wrapper(noise, min(max(t / 1000.0, 0.0), 1.0), x.shape[0], hits),
            options.setdefault("transformer_options", {}))
        out = executor(model, [conds[0], copies] + conds[2:], x, timestep, options)
        if not hits:
            raise RuntimeError(f"{NAME}: this model never computed its time-step embedding through the module its "
                               "family adapter names; this model variant is not supported")
        return out

    def idle_message(self, model, model_options: dict, sigmas: list[float]) -> str | None:
        """None when a step's timestep is in [t_min, t_max]; else the warning, with the bound that takes one in."""
        times = [diffusers_timestep(model, torch.tensor([s]), model_options) for s in sigmas]
        if any(self.t_min <= t <= self.t_max for t in times):
            return None
        setting, value = ("t_min", math.floor(max(times))) if max(times) < self.t_min else \
            ("t_max", math.ceil(min(times)))
        return (f"{NAME}: no step of this {len(sigmas)}-step schedule (timesteps {listed(times)}) is in "
                f"[t_min {self.t_min:g}, t_max {self.t_max:g}], so every step is cond only; try {setting} {value}")

    def _wrapper(self, noise: SampleNoise, t: float, samples: int, hits: list):
        def wrapper(executor, x, *args, **kwargs):
            options = args[4] if len(args) > 4 else kwargs.get("transformer_options", {})
            cond_or_uncond = options.get("cond_or_uncond") or []
            module = time_embedding_module(*reversed(model_names(executor.class_obj)))
            if 1 not in cond_or_uncond or module is None:
                return executor(x, *args, **kwargs)
            batch = x.shape[0]

            def hook(_module, _inputs, output):
                if not isinstance(output, torch.Tensor) or output.shape[0] % batch:
                    return output
                rows = _uncond_rows(cond_or_uncond, batch, output.shape[0], output.device)
                per_sample = (output.shape[0] // batch,) + tuple(output.shape[1:])
                draws = noise.batch(samples, per_sample, output.device)
                chunks = int(rows.sum()) // (samples * per_sample[0])
                draws = draws.repeat((chunks,) + (1,) * len(per_sample))
                grouped = output[rows].reshape(draws.shape)
                perturbed = perturbed_time_embedding(grouped, draws, t, self.scale, self.alpha)
                output = output.clone()
                output[rows] = perturbed.reshape((-1,) + tuple(output.shape[1:]))
                hits.append(True)
                return output

            handle = module.register_forward_hook(hook, prepend=True)
            try:
                return executor(x, *args, **kwargs)
            finally:
                handle.remove()
        return wrapper
