"""What differs between the ComfyUI versions the pack runs on (0.3.75 to 0.33+), detected by feature, never by
version string."""
import inspect

from comfy_api.latest import io


def _accepts(callable_, keyword: str) -> bool:
    return keyword in inspect.signature(callable_).parameters


# ComfyUI 0.33+: an input can be folded under the node's "advanced" section (io.Input's `advanced` keyword).
INPUTS_FOLD_ADVANCED: bool = _accepts(io.Input.__init__, "advanced")
# ComfyUI 0.33+: a node lists extra names the node search finds it by (io.Schema's `search_aliases`).
SCHEMA_SEARCH_ALIASES: bool = _accepts(io.Schema, "search_aliases")


def dynamic_vram(patcher) -> bool:
    """The MODEL is loaded by ComfyUI 0.33+'s dynamic VRAM loader (ModelPatcherDynamic, which has no weight hooks)."""
    is_dynamic = getattr(patcher, "is_dynamic", None)
    return is_dynamic is not None and bool(is_dynamic())
