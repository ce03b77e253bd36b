"""Self-Attention Guidance (arXiv 2210.00939): the attention map captured in the step's own cond/uncond call, then a
post-CFG function that runs the model on the blurred, re-noised prediction and steers away from it.

The degraded pass needs the prediction and attention map of the step's call, so it cannot ride along in that call:
it is one more call, batched over every sample. With CFG SAG acts on the uncond branch (the paper's and ComfyUI's
choice); at cfg 1, where ComfyUI runs no uncond pass, it acts on the cond branch (the paper's rule without CFG).
"""
from __future__ import annotations

import torch

from ..attention_patches.layers import Layer, LayerMap
from ..attention_patches.sag import ReceivedAttention, capture_options
from ..core.run_state import SharedPatch
from ..core.sag import degrade, renoise, sag_guidance
from .main_call import MainCallHook
from .schedule import Schedule


def signal_scale(model, sigma: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """How much of the clean latent a noisy latent at sigma holds, from the model's own noise_scaling: 1 for eps and v
    models, 1 - sigma for flow sampling."""
    zeros, ones = torch.zeros_like(like), torch.ones_like(like)
    return model.model_sampling.noise_scaling(sigma.reshape(-1), zeros, ones)


class SAGCapture(MainCallHook):
    """Installs the capture patch in the step's cond/uncond call (the uncond rows, or the cond rows when the step runs
    no uncond) and keeps the map and that branch's prediction for the post-CFG function."""
    step_keys = ("received", "prediction")

    def __init__(self, lmap: LayerMap, layer: Layer, owner: str, active=None):
        self.lmap, self.layer, self.owner, self.active = lmap, layer, owner, active

    def main_call(self, executor, model, conds, x, timestep, model_options, state):
        if self.active is not None and not self.active(model_options, timestep):
            return executor(model, conds, x, timestep, model_options)
        branch = 0 if conds[1] is None else 1
        received = ReceivedAttention()
        out = executor(model, conds, x, timestep, capture_options(model_options, self.lmap, self.layer, branch,
                                                                  received))
        if received.parts:
            state["received"], state["prediction"] = received, out[branch]
        return out

    def captured(self, args: dict, branch: list) -> tuple[ReceivedAttention, torch.Tensor]:
        """(attention map, the branch's own prediction) of this step, from the step's call or else from a capture
        pass of its own (another node ran the step's call)."""
        received, prediction = self.kept(args["model_options"])
        if received is None:
            import comfy.samplers
            received = ReceivedAttention()
            options = capture_options(args["model_options"], self.lmap, self.layer, 0, received)
            (prediction,) = comfy.samplers.calc_cond_batch(args["model"], [branch], args["input"], args["sigma"],
                                                           options)
        return received, prediction


class SAGPostCFG(SharedPatch):
    """D = D_cfg + s (blur(D_b) - D_b(renoised blur(D_b))), D_b the uncond (with CFG) or cond (at cfg 1) prediction
    blurred where its self-attention map is high."""

    def __init__(self, capture: SAGCapture, scale: float, blur_sigma: float, schedule: Schedule | None = None):
        self.capture, self.scale, self.blur_sigma, self.schedule = capture, scale, blur_sigma, schedule

    def __call__(self, args: dict) -> torch.Tensor:
        scale = self.scale
        if self.schedule is not None:
            scale *= self.schedule.factor(args["model_options"], args["sigma"])
            if scale == 0:
                return args["denoised"]
        import comfy.samplers
        branch = args["cond"] if args["uncond"] is None else args["uncond"]
        received, x0 = self.capture.captured(args, branch)
        x, sigma = args["input"], args["sigma"]
        degraded = degrade(x0, received.mask(tuple(x0.shape[-2:]), self.capture.owner).to(x0.device), self.blur_sigma)
        noisy = renoise(x, x0, degraded, signal_scale(args["model"], sigma, x))
        (prediction,) = comfy.samplers.calc_cond_batch(args["model"], [branch], noisy, sigma, args["model_options"])
        return sag_guidance(args["denoised"], degraded, prediction, scale)
