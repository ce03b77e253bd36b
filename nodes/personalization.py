"""Personalization guidance nodes (Park et al., ICCV 2025, "Steering Guidance for Personalized Text-to-Image
Diffusion Models", arXiv 2508.00319)."""
from comfy_api.latest import io

from ..guiders.two_model import TwoModelError, check_pair, interpolation_patches
from ..guiders.unconditional_prior import UncondFromSecondModel
from .common import NodeInputError, Number, model_patch_schema
from .method_info import MethodInfo, Node
from .two_model import cfg_input, guider, guider_schema, patched_pair, second_model

NAME = "Personalization Guidance (Guidance Zoo)"
GUIDER_NAME = "Personalization Guidance Guider (Guidance Zoo)"
METHOD_INFO = MethodInfo(
    name="Personalization Guidance",
    nodes=(Node("PersonalizationGuidance"), Node("PersonalizationGuidanceGuider", "guider", bold=False)),
    paper="Park et al., ICCV 2025, arXiv 2508.00319",
    fixes=("subject fidelity vs text alignment of a personalized model: uncond from a weak model interpolated between "
           "pre-trained and fine-tuned weights"),
    evaluations="2, two calls (weights switched by a weight hook)",
    models="every family",
    at_cfg_1="no effect",
    short="Personalization")
PRETRAINED = "pretrained_model"
PRETRAINED_TOOLTIP = ("The pre-trained model the personalized one was fine-tuned from (for a DreamBooth LoRA: the "
                      "model without the LoRA).")
RATIO = Number("interpolation", 0.5, 0.0, 1.0, "Share of the fine-tuned weights in the weak model: theta_weak = "
               "theta_pre + ratio (theta_ft - theta_pre). 0 = the pre-trained model (more text alignment), "
               "1 = the fine-tuned model itself (plain CFG, more subject fidelity).")
CFG = cfg_input(7.5)
DESCRIPTION = (
    "Personalization guidance (Park et al., ICCV 2025, arXiv 2508.00319): guides a personalized (fine-tuned) model "
    "by a weak model made by interpolating the pre-trained and fine-tuned weights, conditioned on the null prompt: "
    "D = D_weak(neg) + cfg (D_ft(c) - D_weak(neg)); the interpolation ratio sets how far the weak model is "
    "unlearned. The weak weights are a ComfyUI weight patch switched in for its pass (a LoRA's scaled difference, or "
    "a merge patch referencing the pre-trained weights), never a full extra copy on the GPU. Connect the empty "
    "prompt as the negative. Cost: 2 model evaluations per step (two calls); at cfg 1 nothing changes.")


def weak_model(node: str, model, pretrained_model, interpolation: float):
    try:
        check_pair(node, model, pretrained_model, PRETRAINED)
        patches = interpolation_patches(node, model, pretrained_model, 1.0 - RATIO.check(node, interpolation))
    except TwoModelError as error:
        raise NodeInputError(str(error)) from error
    return second_model(node, model, pretrained_model, PRETRAINED, patches)


class PersonalizationGuidance(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema("PersonalizationGuidance", NAME, "two_model",
                                  DESCRIPTION + " The model input is the fine-tuned model; the KSampler's cfg is the "
                                  "guidance scale.",
                                  [io.Model.Input(PRETRAINED, tooltip=PRETRAINED_TOOLTIP), RATIO.input()],
                                  "The fine-tuned model guided by its interpolated weak version.")

    @classmethod
    def execute(cls, model, pretrained_model, interpolation: float) -> io.NodeOutput:
        weak = weak_model(NAME, model, pretrained_model, interpolation)
        return io.NodeOutput(patched_pair(NAME, model, weak, UncondFromSecondModel(weak)))


class PersonalizationGuidanceGuider(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return guider_schema("PersonalizationGuidanceGuider", GUIDER_NAME, DESCRIPTION,
                             [io.Model.Input(PRETRAINED, tooltip=PRETRAINED_TOOLTIP)], [CFG.input(), RATIO.input()])

    @classmethod
    def execute(cls, model, pretrained_model, positive, negative, cfg: float, interpolation: float) -> io.NodeOutput:
        weak = weak_model(GUIDER_NAME, model, pretrained_model, interpolation)
        return io.NodeOutput(guider(GUIDER_NAME, patched_pair(GUIDER_NAME, model, weak, UncondFromSecondModel(weak)),
                                    positive, negative, CFG.check(GUIDER_NAME, cfg)))
