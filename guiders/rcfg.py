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
from ..core.reduce import per_sample_norm
from .main_call import WRAPPER_KEY, UncondEstimate
from ..core.run_state import run_state

MODES = ("self", "initialize")
RUNAWAY = 30.0   # guided prediction RMS over the first step's that stops a run (tiny models: sane runs < 17x)


def rms(t: torch.Tensor) -> torch.Tensor:
    """Per-sample root mean square over all non-batch dims, (B,)."""
    return per_sample_norm(t.float()).flatten() / t[0].numel() ** 0.5


class RCFG(UncondEstimate):
    def __init__(self, mode: str, delta: float):
        self.mode, self.delta = mode, delta

    def install(self, patcher) -> None:
        super().install(patcher)
        patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.SAMPLER_SAMPLE, WRAPPER_KEY,
                                     self._remember_input)
        patcher.set_model_sampler_post_cfg_function(self._runaway_guard)

    def _runaway_guard(self, args: dict) -> torch.Tensor:
        """A post-CFG check of the guided prediction; returns it unchanged."""
        guided = args["denoised"]
        if args.get("uncond_denoised") is not None:
            self.check_runaway(guided, run_state(args["model_options"], self))
        return guided

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

    def check_runaway(self, guided: torch.Tensor, state: dict) -> None:
        """Stop the run once the guided prediction grows RUNAWAY times past its size at the run's first step: the
        estimate compounds with cfg (each step's estimated uncond pulls away from the reference) instead of guiding."""
        now = rms(guided)
        first = state.get("first_rms")
        if first is None or first.shape != now.shape:
            first = state["first_rms"] = now.clamp(min=1e-3)
        state["guard_calls"] = call = state.get("guard_calls", 0) + 1
        growth = float((now / first).max()) if torch.isfinite(now).all() else float("inf")
        if growth > RUNAWAY:
            raise RuntimeError(
                f"StreamDiffusion RCFG (Guidance Zoo): the run is blowing up (at step {call} the guided prediction "
                f"is {growth:.3g}x its first step's size; stopped past {RUNAWAY:g}x). RCFG's estimated "
                f"uncond (delta {self.delta:g}, mode '{self.mode}') compounds with cfg over the steps: StreamDiffusion "
                "runs cfg 1.2-2 at 1-4 steps. Lower cfg or the step count, lower delta, or use plain CFG.")
