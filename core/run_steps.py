"""The run's step schedule: where a model call is in it, and the once-per-run warning when a few-step schedule leaves
a method nothing to do (Turbo, Lightning, LCM: 4-8 steps), naming the node, the setting and a value that acts."""
from __future__ import annotations

import logging
import math
from collections.abc import Callable

from .run_state import run_state

CHECKED, WARNED = "idle_checked", "idle_warned"


def step_sigmas(model_options: dict) -> list[float] | None:
    """The sigma of each step of the run (its schedule without the final sigma), or None when unknown."""
    sigmas = model_options.get("transformer_options", {}).get("sample_sigmas")
    if sigmas is None or len(sigmas) < 2:
        return None
    return [float(s) for s in sigmas[:-1]]


def listed(values: list[float], limit: int = 8) -> str:
    """'14.6, 4.08, 1.3' (the first `limit` values, then '...')."""
    shown = ", ".join(f"{v:.3g}" for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")


def warn_once(model_options: dict, owner: object, message: str) -> None:
    """Log message as a warning, at most once per run for this owner."""
    state = run_state(model_options, owner)
    if not state.get(WARNED):
        state[WARNED] = True
        logging.warning(message)


def check_run(model_options: dict, owner: object, idle_message: Callable[[list[float]], str | None]) -> None:
    """Once per run: warn with idle_message(step sigmas) when it says the schedule leaves the owner nothing to do."""
    state = run_state(model_options, owner)
    if state.get(CHECKED):
        return
    state[CHECKED] = True
    sigmas = step_sigmas(model_options)
    message = idle_message(sigmas) if sigmas else None
    if message:
        warn_once(model_options, owner, message)


def is_last_step(model_options: dict, sigma) -> bool:
    """Whether this model call is at the sigma of the run's last step."""
    sigmas = step_sigmas(model_options)
    value = float(sigma.flatten()[0])
    return sigmas is not None and abs(value - sigmas[-1]) <= 1e-6 * max(1.0, abs(sigmas[-1]))


def sigma_to_percent(model_sampling, sigma: float) -> float:
    """The least schedule fraction p whose percent_to_sigma(p) <= sigma (bisection; percent_to_sigma falls)."""
    low, high = 0.0, 1.0
    for _ in range(40):
        middle = (low + high) / 2
        if float(model_sampling.percent_to_sigma(middle)) > sigma:
            low = middle
        else:
            high = middle
    return high


def round_up(value: float, places: int) -> float:
    return math.ceil(value * 10 ** places) / 10 ** places


def round_down(value: float, places: int) -> float:
    return max(math.floor(value * 10 ** places) / 10 ** places, 0.0)


def sampler_position(model_options: dict, sigma) -> tuple[int, int]:
    """Index of the current step in the run's sigma schedule and the number of steps (0 of 1 when unknown)."""
    value = float(sigma.flatten()[0])
    sigmas = model_options.get("transformer_options", {}).get("sample_sigmas")
    if sigmas is None or len(sigmas) < 2:
        return 0, 1
    return int((sigmas[:-1].float().cpu() - value).abs().argmin()), len(sigmas) - 1


def progress(model_options: dict, sigma) -> float:
    """0 at the first (noisiest) step, 1 at the last."""
    index, count = sampler_position(model_options, sigma)
    return index / max(count - 1, 1)
