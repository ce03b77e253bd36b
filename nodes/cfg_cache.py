"""FasterCache CFG-Cache node (Lv et al., arXiv 2410.19355)."""
from comfy_api.latest import io

from ..guiders.cfg_cache import NAME, CFGCache, TimestepRange
from .common import NodeInputError, Number, model_patch_schema
from .method_info import MethodInfo, Node

METHOD_INFO = MethodInfo(
    name="FasterCache CFG-Cache", nodes=(Node("FasterCacheCFGCache"),),
    paper="Lv et al., ICLR 2025, arXiv 2410.19355",
    fixes="uncond pass cost (video)",
    evaluations="2 on full steps, 1 otherwise (every 5th full)",
    models="all",
    at_cfg_1="no effect",
    short="FasterCache CFG-cache",
    claim="CFG's quality with fewer model evaluations (uncond reused from cache)")

_SCALE = ("diffusers' 0-1000 timestep scale (DDPM timestep for eps/v models, 1000 x sigma for flow models; "
          "1000 = pure noise)")
FULL_EVERY = Number("full_every", 5, 1, 1000, "Run the real uncond pass on the first model call and every N-th call "
                    "after it; the calls in between reuse the cached frequency deltas (diffusers "
                    "unconditional_batch_skip_range, default 5). 1 = plain CFG.", integer=True)
SKIP_BELOW = Number("skip_below_timestep", 641.0, 0.0, 1001.0, "The uncond pass may only be skipped below this "
                    f"timestep, on {_SCALE}; above it every step runs full CFG (diffusers "
                    "unconditional_batch_timestep_skip_range (-1, 641)). 1001 = skip anywhere.", step=1.0)
ALPHA_LOW = Number("alpha_low", 1.1, 0.0, 10.0, "Factor applied to the cached low-frequency delta on every skipped "
                   "call inside its timestep range; it compounds over a skip run (paper/diffusers 1.1).", step=0.01)
LOW_START = Number("low_timestep_low", 99.0, -1.0, 1001.0, f"Lower end (exclusive) of the alpha_low range, on "
                   f"{_SCALE} (diffusers 99).", step=1.0)
LOW_END = Number("low_timestep_high", 901.0, -1.0, 1001.0, "Upper end (exclusive) of the alpha_low range "
                 "(diffusers 901).", step=1.0)
ALPHA_HIGH = Number("alpha_high", 1.1, 0.0, 10.0, "Factor applied to the cached high-frequency delta on every "
                    "skipped call inside its timestep range; it compounds over a skip run (paper/diffusers 1.1).",
                    step=0.01)
HIGH_START = Number("high_timestep_low", -1.0, -1.0, 1001.0, f"Lower end (exclusive) of the alpha_high range, on "
                    f"{_SCALE} (diffusers -1).", step=1.0)
HIGH_END = Number("high_timestep_high", 301.0, -1.0, 1001.0, "Upper end (exclusive) of the alpha_high range "
                  "(diffusers 301).", step=1.0)
INPUTS = (FULL_EVERY, SKIP_BELOW, ALPHA_LOW, LOW_START, LOW_END, ALPHA_HIGH, HIGH_START, HIGH_END)


def _range(low: float, high: float, low_name: str, high_name: str) -> TimestepRange:
    if low >= high:
        raise NodeInputError(f"{NAME}: '{low_name}' ({low}) must be below '{high_name}' ({high})")
    return TimestepRange(low, high)


class FasterCacheCFGCache(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return model_patch_schema(
            "FasterCacheCFGCache", NAME, "nfe_savers",
            "FasterCache CFG-Cache (Lv et al., ICLR 2025, arXiv 2410.19355). On full steps it runs cond and uncond "
            "and caches the low- and high-frequency parts of (uncond - cond) in eps/velocity space (2-D FFT per "
            "frame); on the steps in between it does not run the uncond pass and rebuilds the uncond prediction "
            "from the cond output plus the cached deltas (scaled by alpha_low / alpha_high, compounding), then "
            "normal CFG. Defaults are diffusers' FasterCacheConfig. Cost: 2 model evaluations per step on full "
            "steps, 1 on the others (about 1.2 per step with full_every 5 inside the skip range). No effect at "
            "cfg 1; not for guidance-distilled models.",
            [number.input() for number in INPUTS], "The model with FasterCache's CFG-Cache.",
            search_aliases=("fastercache", "cfg cache", "faster video cfg"))

    @classmethod
    def execute(cls, model, full_every: int, skip_below_timestep: float, alpha_low: float, low_timestep_low: float,
                low_timestep_high: float, alpha_high: float, high_timestep_low: float,
                high_timestep_high: float) -> io.NodeOutput:
        values = [number.check(NAME, value) for number, value in zip(INPUTS, (
            full_every, skip_below_timestep, alpha_low, low_timestep_low, low_timestep_high, alpha_high,
            high_timestep_low, high_timestep_high))]
        full, skip_below, a_low, low_lo, low_hi, a_high, high_lo, high_hi = values
        hook = CFGCache(full, TimestepRange(-1.0, skip_below), a_low,
                        _range(low_lo, low_hi, LOW_START.name, LOW_END.name), a_high,
                        _range(high_lo, high_hi, HIGH_START.name, HIGH_END.name))
        patched = model.clone()
        hook.install(patched)
        return io.NodeOutput(patched)
