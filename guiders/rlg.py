"""RLG, Reinforcement Learning Guidance (Jin et al., arXiv 2508.21016): the RL-tuned model (the sampled MODEL) and
its base each run with the same CFG; v = v_base^cfg + w (v_rl^cfg - v_base^cfg). Before zero_init_steps the RL model
runs alone (the base pass is skipped)."""
from ..core.rlg import rlg_combine
from ..core.run_state import SharedPatch
from ..core.run_steps import sampler_position
from .two_model import SecondModel


class RLGPostCFG(SharedPatch):
    def __init__(self, base: SecondModel, weight: float, zero_init_steps: int):
        self.base, self.weight, self.zero_init_steps = base, weight, zero_init_steps

    def install(self, patcher) -> None:
        self.base.attach(patcher)
        patcher.set_model_sampler_post_cfg_function(self)

    def __call__(self, args: dict):
        tuned = args["denoised"]
        if sampler_position(args["model_options"], args["sigma"])[0] < self.zero_init_steps:
            return tuned
        uncond = args.get("uncond")
        base = self.base.predict(args["model"], [args["cond"], uncond], args["input"], args["sigma"],
                                 args["model_options"])
        base_guided = base[0] if uncond is None else base[1] + args["cond_scale"] * (base[0] - base[1])
        return rlg_combine(base_guided, tuned, self.weight)
