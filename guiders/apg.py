"""APG (arXiv 2410.02416) as a pre-CFG function: rewrites the cond prediction so ComfyUI's CFG yields APG."""
import logging

from ..core.apg import apg_denoised, apg_guidance, cond_for_linear_cfg
from .run_state import SharedPatch, run_state


class APGPreCFG(SharedPatch):
    """Paper form D = D_c + (w - 1) G'. Chains on the pre-CFG list; momentum lives in the run's model_options."""

    def __init__(self, eta: float, norm_threshold: float, momentum: float):
        self.eta, self.norm_threshold, self.momentum = eta, norm_threshold, momentum

    def __call__(self, args: dict) -> list:
        conds_out = args["conds_out"]
        if len(conds_out) < 2 or args["conds"][1] is None:
            return conds_out
        cond, uncond, scale = conds_out[0], conds_out[1], args["cond_scale"]
        state = run_state(args["model_options"], self)
        if "sampler_cfg_function" in args["model_options"] and not state.get("warned"):
            state["warned"] = True
            logging.warning("APG (Guidance Zoo): another node replaced ComfyUI's CFG function; APG assumes the "
                            "linear CFG combine and its result will be off. Remove that node or apply APG alone.")
        running = state.get("momentum")
        if running is not None and running.shape != cond.shape:
            running = None
        guidance, state["momentum"] = apg_guidance(cond, uncond, self.eta, self.norm_threshold, self.momentum, running)
        target = apg_denoised(cond, guidance, scale)
        if abs(scale) < 1e-6:
            return [target, target] + list(conds_out[2:])
        return [cond_for_linear_cfg(target, uncond, scale), uncond] + list(conds_out[2:])
