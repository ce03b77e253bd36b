"""Pass-through patches of another pack (an attention override and a "dit" block replace) that count their calls."""
from guidance_zoo.attention_patches.families import AttentionReach, layer_map


def has_block_patches(model) -> bool:
    """Whether the model's blocks run ComfyUI's "dit" block replace patches (Lumina2's do not)."""
    return layer_map(model).family.attention_reach is AttentionReach.BLOCK_MARKERS


def with_foreign_patches(model, block: bool = True):
    """A clone carrying a foreign optimized_attention_override (and, if block, a double_block 0 replace), both
    passing through; returns (clone, calls) with calls counting how often each ran."""
    calls = {"override": 0, "block": 0}

    def foreign_override(func, *args, **kwargs):
        calls["override"] += 1
        return func(*args, **kwargs)

    def foreign_block(args, extra):
        calls["block"] += 1
        return extra["original_block"](args)
    foreign = model.clone()
    foreign.model_options["transformer_options"]["optimized_attention_override"] = foreign_override
    if block:
        foreign.set_model_patch_replace(foreign_block, "dit", "double_block", 0)
    return foreign, calls
