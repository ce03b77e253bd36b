"""Autoguidance nodes (Karras et al., NeurIPS 2024, arXiv 2406.02507): a model patch and a GUIDER."""
from comfy_api.latest import io

from ..guiders.autoguidance import AutoguidancePostCFG
from .common import Number, model_patch_schema
from .method_info import MethodInfo, Node
from .two_model import cfg_input, guider, guider_schema, patched_pair, second_model

NAME = "Autoguidance (Guidance Zoo)"
GUIDER_NAME = "Autoguidance Guider (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="Autoguidance", nodes=(Node("Autoguidance"), Node("AutoguidanceGuider", "Autoguidance Guider", tag="GUIDER")),
    paper="Karras et al., NeurIPS 2024, arXiv 2406.02507",
    fixes=("CFG's loss of variety and prompt-driven distortion: guide by a weak version of the model "
           "(smaller/less-trained checkpoint, or lower LoRA strength), on the positive prompt"),
    evaluations="2 at cfg 1 (one call per model); 3 with CFG mixed in",
    models="every family (second model of the same family)",
    at_cfg_1="autoguidance alone")
WEAK = "weak_model"
WEAK_TOOLTIP = ("The weak version of the same model: a smaller or less-trained checkpoint of the family, or the "
                "same checkpoint with its LoRA at a lower strength (a weight variant runs without a second copy).")
SCALE = Number("scale", 2.0, 0.0, 20.0, "Autoguidance scale w: D = D_weak(c) + w (D(c) - D_weak(c)); 1 = off. Paper "
               "(EDM2) presets 2.05-2.45 on ImageNet; lower (1.5-2) is a safer start on text-to-image models.")
CFG = cfg_input(1.0)
DESCRIPTION = (
    "Autoguidance (Karras et al., NeurIPS 2024, arXiv 2406.02507): guides the model by a weaker version of itself, "
    "both conditioned on the positive prompt: D = D_cfg + (w - 1) (D(c) - D_weak(c)), which at cfg 1 is the paper's "
    "D_weak(c) + w (D(c) - D_weak(c)); a cfg above 1 mixes ordinary CFG in. The weak model must share the latent "
    "space and prediction type. Cost: 2 model evaluations per step at cfg 1 (one call on each model), 3 with CFG "
    "(cond and uncond in one call, the weak pass in a second).")


class Autoguidance(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema("Autoguidance", NAME, "two_model",
                                  DESCRIPTION + " The KSampler's cfg is the CFG mixed in (1 = autoguidance alone).",
                                  [io.Model.Input(WEAK, tooltip=WEAK_TOOLTIP), SCALE.input()],
                                  "The model with autoguidance added after its CFG step.",
                                  search_aliases=("autoguidance", "guide with a weaker model", "bad version guidance"))

    @classmethod
    def execute(cls, model, weak_model, scale: float) -> io.NodeOutput:
        scale = SCALE.check(NAME, scale)
        second = second_model(NAME, model, weak_model, WEAK)
        return io.NodeOutput(patched_pair(NAME, model, second, AutoguidancePostCFG(second, scale)))


class AutoguidanceGuider(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return guider_schema("AutoguidanceGuider", GUIDER_NAME, DESCRIPTION,
                             [io.Model.Input(WEAK, tooltip=WEAK_TOOLTIP)], [SCALE.input(), CFG.input()])

    @classmethod
    def execute(cls, model, weak_model, positive, negative, scale: float, cfg: float) -> io.NodeOutput:
        scale, cfg = SCALE.check(GUIDER_NAME, scale), CFG.check(GUIDER_NAME, cfg)
        second = second_model(GUIDER_NAME, model, weak_model, WEAK)
        patch = AutoguidancePostCFG(second, scale)
        return io.NodeOutput(guider(GUIDER_NAME, patched_pair(GUIDER_NAME, model, second, patch), positive, negative,
                                    cfg))
