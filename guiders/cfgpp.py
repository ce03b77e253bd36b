"""CFG++ (arXiv 2406.08070) as KSAMPLER sampler functions for SamplerCustom / SamplerCustomAdvanced.

Each run appends a post-CFG function to a copy of the run's model_options (registered with
disable_cfg1_optimization, so the unconditional branch also runs at cfg 1) that records D_u and returns the CFG
output unchanged; the sampler then steps with the CFG output and renoises with D_u (core/cfgpp.py).
"""
import torch
from tqdm.auto import trange

import comfy.model_sampling
import comfy.samplers
from comfy.k_diffusion.sampling import default_noise_sampler

from ..core.cfgpp import ddim_step, dpmpp_2m_step, signal_scale
from ..core.run_state import SharedPatch

NAME = "CFG++ (Guidance Zoo)"


class CFGPPError(RuntimeError):
    """CFG++ could not get the unconditional prediction it renoises with."""


class UncondCapture(SharedPatch):
    """Post-CFG function of one sampling run: keeps D_u of the latest step, returns the CFG output unchanged."""

    def __init__(self):
        self.uncond: torch.Tensor | None = None

    def __call__(self, args: dict) -> torch.Tensor:
        if args.get("uncond") is None:
            raise CFGPPError(f"{NAME}: CFG++ renoises with the unconditional (negative) prediction, but this run has "
                             "no negative conditioning. Use a CFGGuider (or SamplerCustom) with a negative prompt; "
                             "an empty prompt or ConditioningZeroOut works.")
        self.uncond = args["uncond_denoised"]
        return args["denoised"]

    def install(self, extra_args: dict | None) -> dict:
        """A copy of extra_args whose model_options copy has this capture as its last post-CFG function."""
        extra_args = dict(extra_args or {})
        options = dict(extra_args.get("model_options", {}))
        options["sampler_post_cfg_function"] = list(options.get("sampler_post_cfg_function", [])) + [self]
        options["disable_cfg1_optimization"] = True
        extra_args["model_options"] = options
        return extra_args

    def predict(self, model, x: torch.Tensor, sigma: torch.Tensor,
                extra_args: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(D_lambda, D_u) of one step."""
        self.uncond = None
        guided = model(x, sigma * x.new_ones([x.shape[0]]), **extra_args)
        if self.uncond is None:
            raise CFGPPError(f"{NAME}: the guider did not run ComfyUI's CFG step, so there is no unconditional "
                             "prediction to renoise with. Use CFGGuider / SamplerCustom (or a guider that calls "
                             "the post-CFG functions).")
        return guided, self.uncond


def is_flow(model) -> bool:
    """Whether the run's model is a flow (CONST) model: x = (1 - sigma) x0 + sigma eps."""
    sampling = model.inner_model.model_patcher.get_model_object("model_sampling")
    return isinstance(sampling, comfy.model_sampling.CONST)


@torch.no_grad()
def sample_ddim_cfgpp(model, x, sigmas, extra_args=None, callback=None, disable=None, eta=0.0, s_noise=1.0,
                      noise_sampler=None):
    """CFG++ DDIM / Euler / Euler-ancestral: eta 0 is deterministic (the paper's DDIM CFG++, = Euler CFG++)."""
    capture = UncondCapture()
    extra_args = capture.install(extra_args)
    if noise_sampler is None and eta > 0 and s_noise > 0:
        noise_sampler = default_noise_sampler(x, seed=extra_args.get("seed", None))
    flow = is_flow(model)
    for i in trange(len(sigmas) - 1, disable=disable):
        guided, uncond = capture.predict(model, x, sigmas[i], extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": guided})
        sigma, sigma_next = float(sigmas[i]), float(sigmas[i + 1])
        noise = None
        if sigma_next > 0 and eta > 0 and s_noise > 0:
            noise = noise_sampler(sigmas[i], sigmas[i + 1])
        x = ddim_step(x, guided, uncond, sigma, sigma_next, signal_scale(sigma, flow), signal_scale(sigma_next, flow),
                      eta, s_noise, noise)
    return x


@torch.no_grad()
def sample_euler_cfgpp(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """CFG++ Euler (official EulerCFGppSolver, with alpha factors for flow models)."""
    return sample_ddim_cfgpp(model, x, sigmas, extra_args, callback, disable, eta=0.0, s_noise=0.0)


@torch.no_grad()
def sample_euler_ancestral_cfgpp(model, x, sigmas, extra_args=None, callback=None, disable=None, eta=1.0,
                                 s_noise=1.0, noise_sampler=None):
    """CFG++ Euler ancestral (official EulerAncestralCFGppSolver; ComfyUI's noise draws, same seed same noise)."""
    return sample_ddim_cfgpp(model, x, sigmas, extra_args, callback, disable, eta, s_noise, noise_sampler)


@torch.no_grad()
def sample_dpmpp_2m_cfgpp(model, x, sigmas, extra_args=None, callback=None, disable=None):
    """CFG++ DPM-Solver++(2M) (official DPMpp2mCFGppSolver), with alpha factors and flow half-log-SNR."""
    capture = UncondCapture()
    extra_args = capture.install(extra_args)
    flow = is_flow(model)
    old_uncond, h_last = None, None
    for i in trange(len(sigmas) - 1, disable=disable):
        guided, uncond = capture.predict(model, x, sigmas[i], extra_args)
        if callback is not None:
            callback({"x": x, "i": i, "sigma": sigmas[i], "sigma_hat": sigmas[i], "denoised": guided})
        x, h_last = dpmpp_2m_step(x, guided, uncond, old_uncond, float(sigmas[i]), float(sigmas[i + 1]), flow, h_last)
        old_uncond = uncond
    return x


SAMPLERS = {
    "euler": (sample_euler_cfgpp, ()),
    "euler_ancestral": (sample_euler_ancestral_cfgpp, ("eta", "s_noise")),
    "ddim": (sample_ddim_cfgpp, ("eta", "s_noise")),
    "dpmpp_2m": (sample_dpmpp_2m_cfgpp, ()),
}


def cfgpp_sampler(name: str, **options: float) -> comfy.samplers.KSAMPLER:
    """A KSAMPLER running the named CFG++ sampler with the options it takes (others are ignored)."""
    function, takes = SAMPLERS[name]
    return comfy.samplers.KSAMPLER(function, extra_options={k: options[k] for k in takes if k in options})
