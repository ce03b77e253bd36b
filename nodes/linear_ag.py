"""LinearAG node (Castillo et al., arXiv 2312.12487)."""
import math

from comfy_api.latest import io

from ..guiders.linear_ag import NAME, LinearAG
from .common import NodeInputError, Number, model_patch_schema
from .method_info import MethodInfo, Node

METHOD_INFO = MethodInfo(
    name="LinearAG", nodes=(Node("LinearAG"),),
    paper="Castillo et al., arXiv 2312.12487",
    fixes="uncond pass cost",
    evaluations="2 during warm-up, then 1",
    models="all",
    at_cfg_1="no effect",
    claim="CFG's quality with fewer model evaluations (uncond replaced by a linear estimate)")

WARMUP = Number("warmup_steps", 5, 2, 1000, "Model calls at the start of the run that compute full CFG (cond and "
                "uncond), at least 2; with empty coefficients they are also the calibration data. Not a "
                "paper value (the paper calibrates offline); more warm-up gives a better fit and saves less.",
                integer=True)
COEFFICIENTS_TOOLTIP = ("Empty: fit the coefficients online, per sample, by least squares on the warm-up steps (the "
                        "fit is logged). Otherwise 'b1, b2, b3' (each within +-10) for eps_u = b1 eps_cond + b2 "
                        "eps_cond(prev step) + b3 "
                        "eps_uncond(prev step), or several such rows separated by ';', one per step after the "
                        "warm-up (the last row repeats), e.g. pasted from a logged calibration run.")


COEFFICIENT_LIMIT = 10.0


def parse_coefficients(text: str) -> list[tuple[float, float, float]] | None:
    if not isinstance(text, str):
        raise NodeInputError(f"{NAME}: 'coefficients' must be text, got {text!r}")
    if not text.strip():
        return None
    rows = []
    for row in text.split(";"):
        if not row.strip():
            continue
        try:
            values = tuple(float(v) for v in row.replace(",", " ").split())
        except ValueError:
            raise NodeInputError(f"{NAME}: 'coefficients' row {row.strip()[:80]!r} is not numbers") from None
        if len(values) != 3 or not all(math.isfinite(v) for v in values):
            raise NodeInputError(f"{NAME}: each 'coefficients' row needs 3 finite numbers (cond, previous cond, "
                                 f"previous uncond), got {row.strip()[:80]!r}")
        if max(abs(v) for v in values) > COEFFICIENT_LIMIT:
            raise NodeInputError(f"{NAME}: 'coefficients' must lie between -{COEFFICIENT_LIMIT} and "
                                 f"{COEFFICIENT_LIMIT} (fitted ones are near 1), got {row.strip()[:80]!r}")
        rows.append(values)
    return rows or None


class LinearAdaptiveGuidance(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "LinearAG", NAME, "nfe_savers",
            "LinearAG (Castillo et al., arXiv 2312.12487). After full-CFG warm-up steps, the uncond pass is not run: "
            "the uncond prediction is estimated, in eps/velocity space, as b1 * current cond + b2 * previous cond + "
            "b3 * previous uncond estimate, then normal CFG. Coefficients are given or fitted online by least "
            "squares on the warm-up steps (the paper fits per-timestep coefficients offline on calibration runs). "
            "Cost: 2 model evaluations per step during warm-up, 1 after. No effect at cfg 1.",
            [WARMUP.input(), io.String.Input("coefficients", default="", multiline=False,
                                             tooltip=COEFFICIENTS_TOOLTIP)],
            "The model with LinearAG.",
            search_aliases=("linear adaptive guidance", "skip uncond", "faster cfg"))

    @classmethod
    def execute(cls, model, warmup_steps: int, coefficients: str) -> io.NodeOutput:
        warmup = WARMUP.check(NAME, warmup_steps)
        table = parse_coefficients(coefficients)
        patched = model.clone()
        LinearAG(warmup, table).install(patched)
        return io.NodeOutput(patched)
