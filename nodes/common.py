"""Shared pieces of our V3 nodes: the ID prefix, categories and input checks that fail loudly with the node's name."""
import math

PREFIX = "GuidanceZoo"
CATEGORY = "guidance_zoo"


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
