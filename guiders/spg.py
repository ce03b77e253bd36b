"""SPG (arXiv 2508.11476): the style reference and the style branch batched into ComfyUI's cond/uncond call, and the
post-CFG term D_cfg + s (D_style - D_u).

Each step the style latent is noised to the step's sigma with seeded noise (the sampler's seed and the step index),
and two extra conds, both the negative prompt, are appended to the step's call: the style branch (the generation's
input, index n) and the style reference (index n + 1, whose rows an APPLY_MODEL wrapper of this call replaces by the
noised style latent). The reference's output is not used: it only provides K/V (attention_patches/spg.py). If
something else ran the step, the two extra conds run in a call of their own.
"""
from __future__ import annotations

import torch

import comfy.patcher_extension
import comfy.utils

from ..attention_patches.spg import StyleKVInjection
from .main_call import MainCallHook
from ..core.run_state import SharedPatch, run_state
from ..core.run_steps import sampler_position

WRAPPER_KEY = "guidance_zoo_spg_style_input"


def fit_style_latent(style: torch.Tensor, like: torch.Tensor, owner: str) -> torch.Tensor:
    """The style latent resized (center crop + bilinear) to the generation's latent size, frames repeated from one."""
    if style.ndim != like.ndim:
        raise ValueError(f"{owner}: the style latent has {style.ndim - 2} spatial dims but this model's latents have "
                         f"{like.ndim - 2}; encode the style image with this model's VAE")
    if style.shape[1] != like.shape[1]:
        raise ValueError(f"{owner}: the style latent has {style.shape[1]} channels but this model's latents have "
                         f"{like.shape[1]}; encode the style image with this model's VAE")
    if style.shape[0] not in (1, like.shape[0]):
        raise ValueError(f"{owner}: the style latent holds {style.shape[0]} images; give one, or one per image of "
                         f"the batch ({like.shape[0]})")
    if style.ndim == 5 and style.shape[2] != like.shape[2]:
        if style.shape[2] != 1:
            raise ValueError(f"{owner}: the style latent has {style.shape[2]} frames; give 1 or {like.shape[2]}")
        style = style.expand(-1, -1, like.shape[2], -1, -1)
    if tuple(style.shape[-2:]) != tuple(like.shape[-2:]):
        style = comfy.utils.common_upscale(style, like.shape[-1], like.shape[-2], "bilinear", "center")
    return style.expand((like.shape[0],) + tuple(style.shape[1:]))


def style_noise(shape, seed: int | None, step: int, device, dtype) -> torch.Tensor:
    """Noise for the style latent at one step: seeded by the sampler's seed and the step index, shared by the batch."""
    generator = torch.Generator().manual_seed((int(seed or 0) * 1000003 + step) % (2 ** 63))
    return torch.randn((1,) + tuple(shape[1:]), generator=generator).to(device, dtype).expand(shape)


class StyleBranchPass(MainCallHook):
    step_keys = ("style", "uncond")

    def __init__(self, injection: StyleKVInjection, style_latent: torch.Tensor):
        self.injection, self.style_latent = injection, style_latent

    def _arm(self, executor, x, timestep, model_options, seed=None):
        run_state(model_options, self)["seed"] = seed
        return super()._arm(executor, x, timestep, model_options, seed)

    def noised_style(self, model, x, sigma, model_options) -> torch.Tensor:
        style = fit_style_latent(self.style_latent.to(x.device, x.dtype), x, self.injection.owner)
        style = model.process_latent_in(style)
        step, _ = sampler_position(model_options, sigma)
        noise = style_noise(x.shape, run_state(model_options, self).get("seed"), step, x.device, x.dtype)
        return model.model_sampling.noise_scaling(sigma, noise.clone(), style.clone())

    def run(self, executor, model, conds, negative, x, timestep, model_options) -> list:
        """conds + [style branch, style reference], both the negative prompt; the reference rows' input is replaced
        by the noised style latent."""
        n = len(conds)
        pass_state = self.injection.new_state(chunk=n, ref_chunk=n + 1)
        options = self.injection.options(model_options, pass_state)
        style_x = self.noised_style(model, x, timestep, model_options)

        def style_input(apply_model, x_in, *args, **kwargs):
            transformer_options = args[4] if len(args) > 4 else kwargs.get("transformer_options", {})
            rows = list(transformer_options.get("cond_or_uncond") or [])
            if n + 1 in rows:
                per = x_in.shape[0] // len(rows)
                start = rows.index(n + 1) * per
                x_in = x_in.clone()
                x_in[start:start + per] = style_x.to(x_in.dtype)
            return apply_model(x_in, *args, **kwargs)
        comfy.patcher_extension.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, WRAPPER_KEY,
                                                     style_input, options["transformer_options"])
        out = executor(model, conds + [negative, negative], x, timestep, options)
        self.injection.check(pass_state)
        return out

    def main_call(self, executor, model, conds, x, timestep, model_options, state):
        if conds[1] is None:
            return executor(model, conds, x, timestep, model_options)
        n = len(conds)
        out = self.run(executor, model, conds, conds[1], x, timestep, model_options)
        state["style"], state["uncond"] = out[n], out[1]
        return out[:n]

    def outputs(self, args: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(uncond, style branch) predictions of this step; from the batched call, or else from a call of their own."""
        style, uncond = self.kept(args["model_options"])
        if style is None:
            import comfy.samplers
            style = self.run(comfy.samplers.calc_cond_batch, args["model"], [], args["uncond"], args["input"],
                             args["sigma"], args["model_options"])[0]
            uncond = args["uncond_denoised"]
        return uncond, style


class StyleGuidancePostCFG(SharedPatch):
    """D = D_cfg + s (D_style - D_u), D_u the model's own uncond prediction (before pre-CFG rules rewrote it)."""

    def __init__(self, style_pass: StyleBranchPass, scale: float):
        self.style_pass, self.scale = style_pass, scale

    def __call__(self, args: dict):
        uncond, style = self.style_pass.outputs(args)
        return args["denoised"] + self.scale * (style - uncond)
