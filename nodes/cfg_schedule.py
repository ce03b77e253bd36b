"""CFG Schedule node: weight schedules (arXiv 2404.13040) and the guidance interval (arXiv 2404.07724)."""
from comfy_api.latest import io

from ..core.schedules import SCHEDULES
from ..guiders.cfg_schedule import CFGScheduleRule
from ..guiders.main_call import UncondSkip
from .common import Number, NodeInputError, check_choice, model_patch_schema

NAME = "CFG Schedule (Guidance Zoo)"
FLOOR = Number("floor", 0.0, 0.0, 2.0, "Lowest factor on the guidance (the schedulers paper's clamp). 0 lets "
               "increasing schedules start unguided.")
SIGMA_LOW = Number("sigma_low", 0.0, 0.0, 1000.0, "Guidance interval: guide only while sigma_low < sigma <= "
                   "sigma_high. 0 / 1000 = every step. The paper's SDXL interval is (0.28, 5.42].", step=0.001)
SIGMA_HIGH = Number("sigma_high", 1000.0, 0.0, 1000.0, "Upper end of the guidance interval (see sigma_low).",
                    step=0.001)


class CFGSchedule(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "CFGSchedule", NAME, "cfg",
            "CFG weight schedules (Wang et al., TMLR 2024, arXiv 2404.13040) and the guidance interval (Kynkaanniemi "
            "et al., NeurIPS 2024, arXiv 2404.07724). The sampler's cfg becomes 1 + (cfg - 1) * f(t), where f "
            "averages 1 over the run (increasing schedules, which the paper finds best, guide late steps more), and "
            "outside the sigma interval the step is unguided. Cost: 2 model evaluations per step inside the interval, "
            "1 outside when skip_uncond is on (the uncond pass is not run). Stacks with the other rules in node "
            "order.",
            [io.Combo.Input("schedule", options=list(SCHEDULES), default="linear",
                            tooltip="f(t): constant; linear 2t and cosine 1 - cos(pi t) (increasing, t = 0 at the "
                                    "noisiest step); linear_decreasing and cosine_decreasing (mirrored)."),
             FLOOR.input(), SIGMA_LOW.input(), SIGMA_HIGH.input(),
             io.Boolean.Input("skip_uncond", default=True,
                              tooltip="Outside the interval, do not run the uncond pass at all (saves a model "
                                      "evaluation per unguided step).")],
            "The model with the scheduled CFG.")

    @classmethod
    def execute(cls, model, schedule: str, floor: float, sigma_low: float, sigma_high: float,
                skip_uncond: bool) -> io.NodeOutput:
        check_choice(NAME, "schedule", schedule, SCHEDULES)
        low, high = SIGMA_LOW.check(NAME, sigma_low), SIGMA_HIGH.check(NAME, sigma_high)
        if low >= high:
            raise NodeInputError(f"{NAME}: the interval is empty: sigma_low ({low}) must be below sigma_high ({high})")
        rule = CFGScheduleRule(schedule, FLOOR.check(NAME, floor), low, high)
        patched = model.clone()
        rule.install(patched)
        if skip_uncond:
            UncondSkip(rule.outside).install(patched)
        return io.NodeOutput(patched)
