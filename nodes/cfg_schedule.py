"""CFG Schedule node: weight schedules (arXiv 2404.13040) and the guidance interval (arXiv 2404.07724) on the cfg."""
from comfy_api.latest import io

from ..guiders.cfg_schedule import CFGScheduleRule
from ..guiders.main_call import UncondSkip
from .common import model_patch_schema
from .method_info import MethodInfo, Node
from .schedule import make_schedule, schedule_inputs

NAME = "CFG Schedule (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="CFG Schedule", nodes=(Node("CFGSchedule"),),
    paper="Wang et al., TMLR 2024, arXiv 2404.13040; Kynkaanniemi et al., NeurIPS 2024, arXiv 2404.07724",
    fixes="static CFG; guidance where it hurts (interval)",
    evaluations="2 inside the sigma interval, 1 outside (uncond pass skipped)",
    models="all",
    at_cfg_1="no effect",
    claim_label="CFG schedules (arXiv 2404.13040)",
    claim="increasing schedules improve quality/diversity at equal adherence")


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
            "order. For our methods' own scales use the Guidance Schedule node.",
            schedule_inputs("linear") + [
                io.Boolean.Input("skip_uncond", default=True,
                                 tooltip="Outside the interval, do not run the uncond pass at all (saves a model "
                                         "evaluation per unguided step).")],
            "The model with the scheduled CFG.",
            search_aliases=("guidance interval", "cfg scheduler", "dynamic cfg"))

    @classmethod
    def execute(cls, model, schedule: str, floor: float, sigma_low: float, sigma_high: float,
                skip_uncond: bool) -> io.NodeOutput:
        rule = CFGScheduleRule(make_schedule(NAME, schedule, floor, sigma_low, sigma_high))
        patched = model.clone()
        rule.install(patched)
        if skip_uncond:
            UncondSkip(rule.outside).install(patched)
        return io.NodeOutput(patched)
