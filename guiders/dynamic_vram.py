"""The weight-variant second model under ComfyUI 0.33's dynamic VRAM loader (ModelPatcherDynamic, the default on
NVIDIA GPUs): that loader cannot switch weight hooks in (its patch_hook_weight_to_device raises), and ComfyUI's
CFGGuider only swaps in the classic loader (`get_non_dynamic_delegate()`) for hooks on the conds it is given, never
for the hooks a two-model node adds to its own passes during sampling. So the node patches that classic delegate
instead: the same weights, patches, options and wrappers on a ModelPatcher, built by the MODEL's loader as ComfyUI
does for hooked conds, cached on the input MODEL, with the same results as without the dynamic loader.
"""
from . import compat
from .two_model import SecondModel, TwoModelError


def hookable_main(node: str, main, second: SecondModel):
    """main, or where main is dynamic and second runs as a weight hook, ComfyUI's non-dynamic delegate of it."""
    if second.hooks is None or not compat.dynamic_vram(main):
        return main
    if getattr(main, "cached_patcher_init", None) is None:
        raise TwoModelError(
            f"{node}: the second model is a weight variant of 'model' (a weight hook), which ComfyUI's dynamic VRAM "
            "loader cannot run, and the loader of 'model' gives ComfyUI no way to load its classic copy; load 'model' "
            "with a core loader (Load Checkpoint, Load Diffusion Model), or start ComfyUI with "
            "--disable-dynamic-vram.")
    return main.get_non_dynamic_delegate()
