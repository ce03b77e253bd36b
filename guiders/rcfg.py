"""StreamDiffusion residual CFG, RCFG (Kodaira et al., arXiv 2312.12491): the uncond pass is not run; its noise
prediction is delta times a "stock" noise, eps_u = delta * eps_stock, then ordinary CFG.

The stream pipeline (cumulo-autumn/StreamDiffusion, pipeline.py `unet_step`) carries the stock noise from step to
step through the LCM boundary-condition update and the re-noising noise. In ComfyUI's frame x = x0 + sigma eps
(eps/v models) that recursion has a closed form (checked numerically in the tests): eps_stock = (x - R) / sigma,
the noise pointing from a reference R to the current latent, with
- "self" (Self-Negative RCFG): R = the input latent the sampler started from (img2img: the encoded image; txt2img:
  the empty latent), so every step costs 1 model evaluation;
- "initialize" (Onetime-Negative RCFG): R = the real uncond prediction of the first step, which runs the real
  uncond pass once (2 evaluations on the first step, 1 after).
The uncond prediction is therefore D_u = x - delta (x - R), computed directly on denoised predictions (the same in
every parametrisation: for flow models delta scales the velocity (x - R) / sigma; delta = 1 gives D_u = R).
"""
from __future__ import annotations

import torch

import comfy.patcher_extension

from ..core.rcfg import residual_uncond
from .main_call import WRAPPER_KEY, UncondEstimate
from .run_state import run_state

MODES = ("self", "initialize")


class RCFG(UncondEstimate):
    def __init__(self, mode: str, delta: float):
        self.mode, self.delta = mode, delta

    def install(self, patcher) -> None:
        super().install(patcher)
        patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.SAMPLER_SAMPLE, WRAPPER_KEY,
                                     self._remember_input)

    def _remember_input(self, executor, model_wrap, sigmas, extra_args, callback, noise, latent_image=None,
                        *args, **kwargs):
        """The sampler's input latent (after process_latent_in), the reference of "self"."""
        if latent_image is not None:
            run_state(extra_args["model_options"], self)["input_latent"] = latent_image
        return executor(model_wrap, sigmas, extra_args, callback, noise, latent_image, *args, **kwargs)

    def space(self, model) -> str:
        return "denoised"

    def estimating(self, step, state):
        if self.mode == "initialize":
            reference = state.get("reference")
            return reference is not None and reference.shape == step.x.shape
        latent = state.get("input_latent")
        state["reference"] = latent.to(step.x) if latent is not None and latent.shape == step.x.shape \
            else torch.zeros_like(step.x)
        return True

    def observe(self, step, out, state):
        if self.mode == "initialize":
            state["reference"] = out[1].float()

    def estimate(self, step, cond_out, state):
        return residual_uncond(step.x, state["reference"], self.delta)
