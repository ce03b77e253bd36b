"""Guidance Schedule node: a weight schedule and sigma interval to put on any of our methods' own scales."""
from comfy_api.latest import io

from ..core.schedules import SCHEDULES
from ..guiders.schedule import Schedule
from .common import CATEGORY, PREFIX, Number, NodeInputError, check_choice, patched, schema
from .method_info import MethodInfo, Node

NAME = "Guidance Schedule (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="Guidance Schedule", nodes=(Node("Schedule"),),
    paper="the same two papers",
    fixes=("schedules and intervals for our methods' own scales: PAG's and SEG's scale, and the guidance of APG, FDG, "
           "TCFG, Rescale CFG, CFG-Zero* and Dynamic Thresholding (`scale_schedule` input)"),
    evaluations="0; saves PAG's/SEG's extra pass outside its interval",
    models="all",
    at_cfg_1="-")
SCHEDULE_TYPE = io.Custom("GUIDANCE_SCHEDULE")
FLOOR = Number("floor", 0.0, 0.0, 2.0, "Lowest factor on the guidance (the schedulers paper's clamp). 0 lets "
               "increasing schedules start unguided.")
SIGMA_LOW = Number("sigma_low", 0.0, 0.0, 1000.0, "Guidance interval: guide only while sigma_low < sigma <= "
                   "sigma_high. 0 / 1000 = every step. The paper's SDXL interval is (0.28, 5.42]; flow models "
                   "(Flux, SD3, Wan) have sigmas in [0, 1].", step=0.001)
SIGMA_HIGH = Number("sigma_high", 1000.0, 0.0, 1000.0, "Upper end of the guidance interval (see sigma_low).",
                    step=0.001)


def schedule_inputs(default_kind: str) -> list:
    return [io.Combo.Input("schedule", options=list(SCHEDULES), default=default_kind,
                           tooltip="f(t), averaging 1 over the run: constant; linear 2t and cosine 1 - cos(pi t) "
                                   "(increasing, t = 0 at the noisiest step); linear_decreasing, cosine_decreasing."),
            FLOOR.input(), SIGMA_LOW.input(), SIGMA_HIGH.input()]


RULE_SCHEDULE_TOOLTIP = ("Optional Guidance Schedule on this node's guidance: D = D_c + f(t) (D_node - D_c), f(t) "
                         "inside the schedule's sigma interval and 0 (cond only) outside. Unconnected: as without.")


def scale_schedule_input(tooltip: str = RULE_SCHEDULE_TOOLTIP):
    """The optional GUIDANCE_SCHEDULE input of a node with a guidance strength of its own."""
    return SCHEDULE_TYPE.Input("scale_schedule", optional=True, tooltip=tooltip)


def patch_with_rule(model, rule, scale_schedule=None) -> io.NodeOutput:
    """Clone the model and hang a combine rule on it, with the optional schedule on its guidance."""
    rule.scale_schedule = scale_schedule
    return io.NodeOutput(patched(model, rule))


def make_schedule(node: str, schedule: str, floor: float, sigma_low: float, sigma_high: float) -> Schedule:
    check_choice(node, "schedule", schedule, SCHEDULES)
    low, high = SIGMA_LOW.check(node, sigma_low), SIGMA_HIGH.check(node, sigma_high)
    if low >= high:
        raise NodeInputError(f"{node}: the interval is empty: sigma_low ({low}) must be below sigma_high ({high})")
    return Schedule(schedule, FLOOR.check(node, floor), low, high, node)


class GuidanceSchedule(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id=f"{PREFIX}Schedule", display_name=NAME, category=f"{CATEGORY}/cfg",
            description="A guidance weight schedule (Wang et al., TMLR 2024, arXiv 2404.13040) within a guidance "
                        "interval (Kynkaanniemi et al., NeurIPS 2024, arXiv 2404.07724), for the "
                        "scale_schedule input of our other nodes: PAG's and SEG's scale is multiplied by f(t) inside "
                        "the interval and is 0 outside, where they skip their extra pass; on the CFG-family nodes "
                        "(APG, FDG, TCFG, Rescale CFG, CFG-Zero*, Dynamic Thresholding) it scales the node's "
                        "guidance, D_c + f(t) (D_node - D_c). Costs no model "
                        "evaluations itself; saves the extra pass's evaluations outside the interval.",
            inputs=schedule_inputs("constant"),
            outputs=[SCHEDULE_TYPE.Output(tooltip="Connect to a scale_schedule input.")])

    @classmethod
    def execute(cls, schedule: str, floor: float, sigma_low: float, sigma_high: float) -> io.NodeOutput:
        return io.NodeOutput(make_schedule(NAME, schedule, floor, sigma_low, sigma_high))
