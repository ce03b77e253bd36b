"""Shared pieces of the two-model nodes (Autoguidance, unconditional priors, domain guidance, RLG, personalization
guidance): the second-model input, the pair check, and the GUIDER form of a model patch."""
from dataclasses import dataclass

import comfy.samplers
from comfy_api.latest import io

from ..guiders.dynamic_vram import hookable_main
from ..guiders.two_model import SecondModel, TwoModelError, check_pair
from ..guiders.unconditional_prior import UncondFromSecondModel
from .common import CATEGORY, PREFIX, NodeInputError, Number, model_patch_schema, patched, schema
from .conditioning import check_conditioning

CFG_TOOLTIP = "Guidance scale of the pair, as the KSampler's cfg."


def cfg_input(default: float) -> Number:
    return Number("cfg", default, 0.0, 100.0, CFG_TOOLTIP)


def conditioning_inputs() -> list:
    return [io.Conditioning.Input("positive", tooltip="What the image should show."),
            io.Conditioning.Input("negative", tooltip="The negative or empty prompt (the unconditional branch).")]


def second_model(node: str, model, second, second_input: str, patches: dict | None = None) -> SecondModel:
    """The checked pair's second model; a missing model or a family mismatch is an error naming the node."""
    try:
        check_pair(node, model, second, second_input)
        return SecondModel(node, model, None if patches is not None else second, patches)
    except TwoModelError as error:
        raise NodeInputError(str(error)) from error


def patched_pair(node: str, model, second: SecondModel, patch):
    """patched(model, patch) for a pair; on ComfyUI's classic delegate of model where the dynamic VRAM loader cannot
    run the second model's weight hook (guiders/dynamic_vram.py)."""
    try:
        target = hookable_main(node, model, second)
    except TwoModelError as error:
        raise NodeInputError(str(error)) from error
    return patched(target, patch)


def guider(node: str, model, positive, negative, cfg: float) -> comfy.samplers.CFGGuider:
    """A GUIDER running the patched model with ComfyUI's CFG, for SamplerCustomAdvanced."""
    for name, value in (("positive", positive), ("negative", negative)):
        check_conditioning(node, name, value, model)
    result = comfy.samplers.CFGGuider(model)
    result.set_conds(positive, negative)
    result.set_cfg(cfg)
    return result


def guider_schema(node_id: str, name: str, description: str, model_inputs: list, inputs: list) -> io.Schema:
    """Schema of a two-model GUIDER node: the models, positive and negative, then the method's inputs."""
    return schema(node_id=f"{PREFIX}{node_id}", display_name=name, category=f"{CATEGORY}/guiders",
                  description=description + " GUIDER for SamplerCustomAdvanced.",
                  inputs=[io.Model.Input("model", tooltip="The model to sample with.")] + model_inputs
                  + conditioning_inputs() + inputs,
                  outputs=[io.Guider.Output(tooltip="The guider, for SamplerCustomAdvanced.")])


@dataclass(frozen=True)
class UncondMethod:
    """A method whose unconditional branch comes from a second model (unconditional priors, domain guidance)."""
    node_id: str
    name: str
    second: str
    tooltip: str
    description: str
    model_note: str
    output_tooltip: str
    cfg: Number

    @property
    def guider_name(self) -> str:
        return self.name.replace(" (Guidance Zoo)", " Guider (Guidance Zoo)")


def _arguments(names: list[str], args: tuple, kwargs: dict) -> dict:
    """Inputs given by position (tests, scripts) or by name (ComfyUI) as one dict."""
    values = dict(zip(names, args))
    values.update(kwargs)
    return values


class UncondPatchNode:
    """The model-patch node of an UncondMethod (mixed into an io.ComfyNode with METHOD set)."""
    METHOD: UncondMethod

    @classmethod
    def define_schema(cls) -> io.Schema:
        m = cls.METHOD
        return model_patch_schema(m.node_id, m.name, "two_model", m.description + m.model_note,
                                  [io.Model.Input(m.second, tooltip=m.tooltip)], m.output_tooltip)

    @classmethod
    def execute(cls, *args, **kwargs) -> io.NodeOutput:
        m = cls.METHOD
        values = _arguments(["model", m.second], args, kwargs)
        model = values["model"]
        second = second_model(m.name, model, values[m.second], m.second)
        return io.NodeOutput(patched_pair(m.name, model, second, UncondFromSecondModel(second)))


class UncondGuiderNode:
    """The GUIDER node of an UncondMethod (mixed into an io.ComfyNode with METHOD set)."""
    METHOD: UncondMethod

    @classmethod
    def define_schema(cls) -> io.Schema:
        m = cls.METHOD
        return guider_schema(f"{m.node_id}Guider", m.guider_name, m.description,
                             [io.Model.Input(m.second, tooltip=m.tooltip)], [m.cfg.input()])

    @classmethod
    def execute(cls, *args, **kwargs) -> io.NodeOutput:
        m, name = cls.METHOD, cls.METHOD.guider_name
        values = _arguments(["model", m.second, "positive", "negative", "cfg"], args, kwargs)
        model = values["model"]
        second = second_model(name, model, values[m.second], m.second)
        return io.NodeOutput(guider(name, patched_pair(name, model, second, UncondFromSecondModel(second)),
                                    values["positive"], values["negative"], m.cfg.check(name, values["cfg"])))
