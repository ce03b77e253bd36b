"""Edit models' reference-latent tokens in whole-block perturbations (Flux Kontext, Flux2 and Qwen-Image-Edit with
reference latents: the model appends their tokens after the generated image tokens; the adapter's generated_tokens
and pass_state.count_generated tell how many those are). A perturbation acts on the generated tokens only and leaves
the reference tokens' rows as the block computes them."""
from __future__ import annotations

from collections.abc import Callable

import torch

from .layers import Layer, LayerMap
from .tokens import joint_slices, reference_slice


def block_tokens(lmap: LayerMap, layer: Layer, tokens: int, state) -> tuple[slice, slice | None]:
    """(the image tokens a block perturbation acts on, the reference tokens or None) of a block's `tokens` hidden
    states: joint sequences (Flux single blocks, Lumina2) carry text; state is the pass's BlockPassState."""
    carries_text = lmap.family.block_carries_text(layer)
    refs = reference_slice(tokens, state.text_len if carries_text else 0, lmap.text_first, state.generated_len)
    generated = state.image_len if refs is None else state.generated_len
    if carries_text:
        return joint_slices(tokens, state.text_len, lmap.text_first, generated)[1], refs
    return slice(0, tokens if refs is None else generated), refs


def block_with_references(run: Callable[[dict], dict], args: dict, image: str, rows: torch.Tensor | None,
                          changed: torch.Tensor | None, refs: slice,
                          keep_input: Callable[..., torch.Tensor]) -> dict:
    """A perturbed "dit" block call whose hidden states args[image] carry reference tokens: run(args) is the block;
    changed its new input (None: the block is skipped); rows the perturbed batch rows (None: all). The reference
    tokens' rows get the block's own output on the unchanged input; a skipped block's other tokens keep its input."""
    kept = {key: args[key].clone() for key in (image, "txt") if args.get(key) is not None}   # blocks add in place
    if changed is not None:
        plain = run({**args, **kept})
        out = run({**args, image: changed})
        out[image][:, refs] = plain[image][:, refs].to(out[image].dtype)
        return out
    out = run(args)
    for key, before in kept.items():
        if out.get(key) is not None and out[key].shape == before.shape:
            if key == image:
                before[:, refs] = out[key][:, refs].to(before.dtype)
            out[key] = keep_input(rows, before, out[key])
    return out
