"""The unconditional branch from a second model (unconditional priors, arXiv 2503.20240; domain guidance, Zhong et
al., ICLR 2025; personalization guidance, arXiv 2508.00319): D = D_second(x, neg) + cfg (D_main(x, c) - D_second(x,
neg)).

The step's cond/uncond call runs the positive on the main model and the negative on the second one; ComfyUI's CFG and
every pre/post-CFG rule then work on that pair as on an ordinary one.
"""
from .main_call import MainCallHook, without_uncond
from .two_model import SecondModel


class UncondFromSecondModel(MainCallHook):
    def __init__(self, second: SecondModel):
        self.second = second

    def install(self, patcher) -> None:
        super().install(patcher)
        self.second.attach(patcher)

    def main_call(self, executor, model, conds, x, timestep, model_options, state):
        uncond = conds[1]
        if uncond is None:
            return executor(model, conds, x, timestep, model_options)
        if self.second.batches_with_main:
            return executor(model, [conds[0], self.second.hooked(uncond)] + conds[2:], x, timestep, model_options)
        out = without_uncond(executor, model, conds, x, timestep, model_options)
        out[1] = self.second.predict(model, [uncond], x, timestep, model_options)[0]
        return out
