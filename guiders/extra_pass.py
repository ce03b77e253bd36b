"""One extra pass of the positive cond, batched into ComfyUI's own cond/uncond model call where ComfyUI allows.

A PREDICT_NOISE wrapper arms the run's state at each model step; the CALC_COND_BATCH wrapper then appends the
positive cond to the first calc_cond_batch of that step if it is the cond/uncond call (two or more conds, the first
one positive), with the perturbation installed for that cond's rows only, and keeps the extra output for the
post-CFG function. Any other first call disarms it. Both are chainable wrappers, so no
exclusive slot is taken. If something else ran the step (the output is missing), the pass runs on its own instead.
"""
import torch

import comfy.patcher_extension

from ..attention_patches.hook import PerturbedPass
from .run_state import SharedPatch, run_state

WRAPPER_KEY = "guidance_zoo_extra_pass"


class ExtraCondPass(SharedPatch):
    def __init__(self, perturbed_pass: PerturbedPass):
        self.perturbed_pass = perturbed_pass

    def install(self, patcher) -> None:
        patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.PREDICT_NOISE, WRAPPER_KEY, self._arm)
        patcher.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.CALC_COND_BATCH, WRAPPER_KEY, self._batch)

    def _arm(self, executor, x, timestep, model_options, seed=None):
        state = run_state(model_options, self)
        state["armed"] = True
        try:
            return executor(x, timestep, model_options, seed)
        finally:
            for key in ("armed", "output", "cond"):
                state.pop(key, None)

    def _batch(self, executor, model, conds, x, timestep, model_options):
        state = run_state(model_options, self)
        if not state.pop("armed", False) or len(conds) < 2 or conds[0] is None:
            return executor(model, conds, x, timestep, model_options)
        index = len(conds)
        pass_state = self.perturbed_pass.new_state(chunk=index)
        out = executor(model, list(conds) + [conds[0]], x, timestep,
                       self.perturbed_pass.options(model_options, pass_state))
        self.perturbed_pass.check(pass_state)
        state["output"], state["cond"] = out[index], out[0]
        return out[:index]

    def outputs(self, args: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(cond, perturbed) predictions of this step, from the batched call or else from a pass of its own.

        cond is the model's own cond prediction, before pre-CFG functions (such as APG) rewrote it; when the step
        was not batched it is the cond prediction that reached the post-CFG list.
        """
        state = run_state(args["model_options"], self)
        state.pop("armed", None)
        out, cond = state.pop("output", None), state.pop("cond", None)
        if out is None:
            (out,) = self.perturbed_pass.run(args["model"], [args["cond"]], args["input"], args["sigma"],
                                             args["model_options"])
            cond = args["cond_denoised"]
        return cond, out
