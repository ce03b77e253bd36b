"""RLG nodes (Jin et al., arXiv 2508.21016): Reinforcement Learning Guidance between an RL-tuned model and its base."""
from comfy_api.latest import io

from ..guiders.rlg import RLGPostCFG
from .common import Number, model_patch_schema
from .method_info import MethodInfo, Node
from .two_model import cfg_input, guider, guider_schema, patched_pair, second_model

NAME = "RLG (Guidance Zoo)"
GUIDER_NAME = "RLG Guider (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="RLG", nodes=(Node("RLG"), Node("RLGGuider", "guider", bold=False)),
    paper="Jin et al., arXiv 2508.21016",
    fixes=("RL alignment strength at inference: v_base^cfg + w (v_rl^cfg - v_base^cfg), interpolate (0-1) or "
           "extrapolate (> 1)"),
    evaluations="4, one call per model (2 at cfg 1)",
    models="every family",
    at_cfg_1="both models without CFG")
BASE = "base_model"
BASE_TOOLTIP = ("The base model the RL-tuned one came from (for an RL LoRA: the model without it; it then runs as a "
                "weight variant, without a second copy).")
SCALE = Number("rl_scale", 1.6, -10.0, 10.0, "RLG weight w: v = v_base^cfg + w (v_rl^cfg - v_base^cfg). "
               "0 = base model, "
               "1 = RL model alone, between = interpolation, above 1 = extrapolation (official README example 1.6, "
               "pipeline default 2.0).")
ZERO_INIT = Number("zero_init_steps", 0, 0, 10000, "Number of first steps that use the RL model alone (official "
                   "zero_init_step, default 0); the base pass is skipped there.", integer=True)
CFG = cfg_input(4.5)
DESCRIPTION = (
    "RLG, Reinforcement Learning Guidance (Jin et al., arXiv 2508.21016): the RL-tuned model (e.g. a Flow-GRPO LoRA) "
    "and its base each run with CFG at the same scale, then v = v_base^cfg + w (v_rl^cfg - v_base^cfg): w between 0 "
    "and 1 interpolates, above 1 extrapolates the alignment gained by RL (a geometric average of the two "
    "distributions). Cost: 4 model evaluations per step with CFG (cond and uncond of each model in one call per "
    "model), 2 at cfg 1; the RL model's 2 alone during zero_init_steps.")


class RLG(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema("RLG", NAME, "two_model",
                                  DESCRIPTION + " The model input is the RL-tuned model; the KSampler's cfg is both "
                                  "models' CFG scale.",
                                  [io.Model.Input(BASE, tooltip=BASE_TOOLTIP), SCALE.input(), ZERO_INIT.input()],
                                  "The RL-tuned model with RLG after its CFG step.")

    @classmethod
    def execute(cls, model, base_model, rl_scale: float, zero_init_steps: int) -> io.NodeOutput:
        second = second_model(NAME, model, base_model, BASE)
        patch = RLGPostCFG(second, SCALE.check(NAME, rl_scale), ZERO_INIT.check(NAME, zero_init_steps))
        return io.NodeOutput(patched_pair(NAME, model, second, patch))


class RLGGuider(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return guider_schema("RLGGuider", GUIDER_NAME, DESCRIPTION, [io.Model.Input(BASE, tooltip=BASE_TOOLTIP)],
                             [CFG.input(), SCALE.input(), ZERO_INIT.input()])

    @classmethod
    def execute(cls, model, base_model, positive, negative, cfg: float, rl_scale: float,
                zero_init_steps: int) -> io.NodeOutput:
        second = second_model(GUIDER_NAME, model, base_model, BASE)
        patch = RLGPostCFG(second, SCALE.check(GUIDER_NAME, rl_scale), ZERO_INIT.check(GUIDER_NAME, zero_init_steps))
        return io.NodeOutput(guider(GUIDER_NAME, patched_pair(GUIDER_NAME, model, second, patch), positive, negative,
                                    CFG.check(GUIDER_NAME, cfg)))
