"""Guidance weight schedules (Wang et al., TMLR 2024, arXiv 2404.13040) and the guidance interval
(Kynkaanniemi et al., NeurIPS 2024, arXiv 2404.07724)."""
import math

SCHEDULES = ("constant", "linear", "cosine", "linear_decreasing", "cosine_decreasing")


def schedule_factor(kind: str, progress: float, floor: float = 0.0) -> float:
    """Weight schedule (arXiv 2404.13040): factor on the excess guidance, averaging 1; progress 0 = noisiest step."""
    p = min(max(progress, 0.0), 1.0)
    factor = {
        "constant": 1.0,
        "linear": 2.0 * p,
        "cosine": 1.0 - math.cos(math.pi * p),
        "linear_decreasing": 2.0 * (1.0 - p),
        "cosine_decreasing": 1.0 + math.cos(math.pi * p),
    }[kind]
    return max(factor, floor)


def in_interval(sigma: float, sigma_low: float, sigma_high: float) -> bool:
    """Guidance interval (arXiv 2404.07724): guide only while sigma_low < sigma <= sigma_high."""
    return sigma_low < sigma <= sigma_high


def scheduled_cfg(cfg: float, factor: float) -> float:
    """CFG scale with the schedule applied to the excess over 1, so unguided steps fall back to cond only."""
    return 1.0 + (cfg - 1.0) * factor
