"""Autoguidance (Karras et al., NeurIPS 2024, arXiv 2406.02507): guide the model by a weaker version of itself,
both on the positive prompt. A post-CFG term, so ordinary CFG (the sampler's cfg) mixes in; cfg 1 = autoguidance
alone."""
from ..core.autoguidance import autoguidance
from .main_call import MainCallHook
from ..core.run_state import SharedPatch
from .two_model import SecondModel


class WeakCondPass(MainCallHook):
    """Runs the weak model's positive pass with the step's cond/uncond call and keeps the raw main cond beside it."""

    step_keys = ("cond", "weak")

    def __init__(self, second: SecondModel):
        self.second = second

    def main_call(self, executor, model, conds, x, timestep, model_options, state):
        if self.second.batches_with_main:
            out = executor(model, conds + [self.second.hooked(conds[0])], x, timestep, model_options)
            state["weak"] = out.pop()
        else:
            out = executor(model, conds, x, timestep, model_options)
            state["weak"] = self.second.predict(model, [conds[0]], x, timestep, model_options)[0]
        state["cond"] = out[0]
        return out

    def outputs(self, args: dict):
        """(main cond, weak cond) of this step; the weak pass runs here if the step's call was not ours."""
        cond, weak = self.kept(args["model_options"])
        if weak is None:
            cond = args["cond_denoised"]
            (weak,) = self.second.predict(args["model"], [args["cond"]], args["input"], args["sigma"],
                                          args["model_options"])
        return cond, weak


class AutoguidancePostCFG(SharedPatch):
    """D = D_cfg + (w - 1) (D_main(c) - D_weak(c))."""

    def __init__(self, second: SecondModel, scale: float):
        self.weak_pass, self.scale = WeakCondPass(second), scale

    def install(self, patcher) -> None:
        self.weak_pass.install(patcher)
        self.weak_pass.second.attach(patcher)
        patcher.set_model_sampler_post_cfg_function(self)

    def __call__(self, args: dict):
        cond, weak = self.weak_pass.outputs(args)
        return autoguidance(args["denoised"], cond, weak, self.scale)
