"""Shared pieces of our V3 nodes: the ID prefix, categories and input checks that fail loudly with the node's name."""
import math
from dataclasses import dataclass

from comfy_api.latest import io

from ..guiders import compat

PREFIX = "GuidanceZoo"
CATEGORY = "guidance_zoo"
MODEL_TOOLTIP = "The model to patch. Any architecture; image or video latents."
# Inputs an expert tunes (layers, schedules, seeds, momentum, rescaling, the fine structure of a rule): folded under
# the node's "advanced" section where ComfyUI has one, so a node shows its scale first.
EXPERT_INPUTS = frozenset({
    "layers", "scale_schedule", "seed", "momentum", "norm_threshold", "epsilon", "iterations", "rescaling_scale",
    "zero_init_steps", "coefficients", "skip_below_timestep", "alpha_low", "alpha_high", "low_timestep_low",
    "low_timestep_high", "high_timestep_low", "high_timestep_high", "levels", "parallel_weight_high",
    "parallel_weight_low", "ddim_eta", "s_noise", "min_rate", "max_rate", "tau", "alpha", "sigma_end", "t_min",
    "t_max", "percentile", "drop_ratio", "min_steps"})


class NodeInputError(ValueError):
    """Bad input to one of our nodes; the message names the node and the problem."""


def check_number(node: str, name: str, value: float, low: float, high: float) -> float:
    """Reject NaN, infinities and values outside [low, high] with a message naming the node and the input."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise NodeInputError(f"{node}: '{name}' must be a number, got {value!r}")
    if not math.isfinite(value):
        raise NodeInputError(f"{node}: '{name}' must be a finite number, got {value}")
    if not low <= value <= high:
        raise NodeInputError(f"{node}: '{name}' must be between {low} and {high}, got {value}")
    return float(value)


def check_choice(node: str, name: str, value: str, options: tuple[str, ...]) -> str:
    if value not in options:
        raise NodeInputError(f"{node}: '{name}' must be one of {', '.join(options)}, got {value!r}")
    return value


@dataclass(frozen=True)
class Number:
    """A numeric node input: its widget and its check share one definition."""
    name: str
    default: float
    low: float
    high: float
    tooltip: str
    step: float = 0.01
    integer: bool = False

    def input(self):
        if self.integer:
            return io.Int.Input(self.name, default=int(self.default), min=int(self.low), max=int(self.high),
                                tooltip=self.tooltip)
        return io.Float.Input(self.name, default=self.default, min=self.low, max=self.high, step=self.step,
                              tooltip=self.tooltip)

    def check(self, node: str, value: float) -> float:
        checked = check_number(node, self.name, value, self.low, self.high)
        if self.integer and checked != int(checked):
            raise NodeInputError(f"{node}: '{self.name}' must be a whole number, got {value}")
        return int(checked) if self.integer else checked


def patched(model, patch):
    """A clone of model with patch (an object with install(patcher)) installed."""
    clone = model.clone()
    patch.install(clone)
    return clone


def seed_number(what: str) -> Number:
    """The 'seed' input of a method that draws random numbers (its own generator, never the global RNG)."""
    return Number("seed", 0, 0, 2 ** 31 - 1, f"Seed of {what}, from this seed and the step, never the global RNG.",
                  integer=True)


def schema(search_aliases: tuple[str, ...] = (), **fields) -> io.Schema:
    """io.Schema of one of our nodes, with what this ComfyUI offers beyond 0.3.75: EXPERT_INPUTS folded under
    "advanced", and search_aliases (the names users search for) given to the node search."""
    if compat.INPUTS_FOLD_ADVANCED:
        for item in fields.get("inputs") or []:
            if item.id in EXPERT_INPUTS:
                item.advanced = True
    if compat.SCHEMA_SEARCH_ALIASES and search_aliases:
        fields["search_aliases"] = list(search_aliases)
    return io.Schema(**fields)


def model_patch_schema(node_id: str, name: str, category: str, description: str, inputs: list,
                       output_tooltip: str, search_aliases: tuple[str, ...] = ()) -> io.Schema:
    """Schema of a MODEL -> MODEL patch node."""
    return schema(node_id=f"{PREFIX}{node_id}", display_name=name, category=f"{CATEGORY}/{category}",
                  description=description, inputs=[io.Model.Input("model", tooltip=MODEL_TOOLTIP)] + inputs,
                  outputs=[io.Model.Output(tooltip=output_tooltip)], search_aliases=search_aliases)
