"""One extra pass of the positive cond, batched into ComfyUI's own cond/uncond model call where ComfyUI allows.

The positive cond is appended to the step's cond/uncond call (see main_call.py) with the perturbation installed for
that cond's rows only, and the extra output is kept for the post-CFG function. If something else ran the step (the
output is missing), the pass runs on its own instead.
"""
import torch

from ..attention_patches.hook import PerturbedPass
from .main_call import MainCallHook


class ExtraCondPass(MainCallHook):
    step_keys = ("output", "cond")

    def __init__(self, perturbed_pass: PerturbedPass, active=None):
        self.perturbed_pass, self.active = perturbed_pass, active

    def main_call(self, executor, model, conds, x, timestep, model_options, state):
        if self.active is not None and not self.active(model_options, timestep):
            return executor(model, conds, x, timestep, model_options)
        index = len(conds)
        pass_state = self.perturbed_pass.new_state(chunk=index)
        out = executor(model, conds + [conds[0]], x, timestep, self.perturbed_pass.options(model_options, pass_state))
        self.perturbed_pass.check(pass_state)
        state["output"], state["cond"] = out[index], out[0]
        return out[:index]

    def outputs(self, args: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(cond, perturbed) predictions of this step, from the batched call or else from a pass of its own.

        cond is the model's own cond prediction, before pre-CFG functions (such as APG) rewrote it; when the step
        was not batched it is the cond prediction that reached the post-CFG list.
        """
        out, cond = self.kept(args["model_options"])
        if out is None:
            (out,) = self.perturbed_pass.run(args["model"], [args["cond"]], args["input"], args["sigma"],
                                             args["model_options"])
            cond = args["cond_denoised"]
        return cond, out
