"""The check every node taking a CONDITIONING makes before sampling: its text encoding fits the model's text input."""
import torch

from .common import NodeInputError

# Token widths of the text encoders ComfyUI's models take, to name what arrived and what is expected.
ENCODERS = {768: "CLIP-L", 1024: "CLIP-H / OpenCLIP", 1280: "CLIP-G", 2048: "CLIP-L + CLIP-G (SDXL)",
            2304: "Gemma 2 2B", 3584: "Qwen2.5-VL 7B", 4096: "T5-XXL / umT5-XXL / Llama", 5120: "Mistral",
            15360: "Mistral 3 (Flux2)"}
# Modules whose first linear layer takes the text tokens (DiTs), in the order they are looked for.
TEXT_INPUTS = ("txt_in", "context_embedder", "text_embedding", "cap_embedder", "txt_norm", "t5_yproj",
               "cond_seq_linear", "text_embeddings", "text_proj")


def _input_width(module: torch.nn.Module) -> int | None:
    """in_features of module when it is a Linear, or a Sequential whose first layer past any norms is one; else None
    (a module of unknown layout is not guessed at)."""
    if isinstance(module, torch.nn.Linear):
        return module.in_features
    if isinstance(getattr(module, "in_layer", None), torch.nn.Linear):     # Kandinsky 5's TextEmbeddings
        return module.in_layer.in_features
    if isinstance(module, torch.nn.Sequential):
        for sub in module:
            if isinstance(sub, torch.nn.Linear):
                return sub.in_features
            if "norm" not in type(sub).__name__.lower():
                return None
    return None


def model_text_width(model) -> int | None:
    """The token width of the text input of a ModelPatcher's diffusion model, or None where it cannot be told."""
    dm = getattr(getattr(model, "model", None), "diffusion_model", None)
    if dm is None:
        return None
    if widths := adapter_widths(model):
        return widths[0]
    for name in TEXT_INPUTS:
        if isinstance(getattr(dm, name, None), torch.nn.Module):
            return _input_width(getattr(dm, name))
    for name, sub in dm.named_modules():
        # UNets' key projection, HunyuanDiT's, PixArt's caption embedder, Cosmos Predict2's first cross-attention key
        if name.endswith(("attn2.to_k", "attn2.kv_proj", "y_embedder.y_proj.fc1",
                          "blocks.0.cross_attn.k_proj")) and isinstance(sub, torch.nn.Linear):
            return sub.in_features
    return None


def adapter_widths(model) -> tuple[int, ...]:
    """The text widths the model's family adapter names (LTX-2 takes several), () where none does."""
    from ..attention_patches.families import family_for, model_names
    try:
        return family_for(*reversed(model_names(model.model))).text_widths(model.model.diffusion_model)
    except ValueError:
        return ()


def _named(width: int) -> str:
    return f"{width} wide ({ENCODERS[width]})" if width in ENCODERS else f"{width} wide"


def model_name(model) -> str:
    config = getattr(getattr(model, "model", None), "model_config", None)
    return type(config).__name__ if config is not None else type(getattr(model, "model", model)).__name__


def check_conditioning(node: str, name: str, conditioning, model) -> list:
    """conditioning, checked: a non-empty CONDITIONING list whose tensors are (batch, tokens, width) with the width of
    the model's text input; else a NodeInputError naming the node, the input, what the model takes and what came."""
    if not conditioning or not isinstance(conditioning, (list, tuple)):
        raise NodeInputError(f"{node}: '{name}' is missing or empty; connect a CLIP Text Encode (an empty prompt "
                             "encodes \"\")")
    width = model_text_width(model)
    for entry in conditioning:
        tensor = entry[0] if isinstance(entry, (list, tuple)) and len(entry) == 2 else None
        if not isinstance(tensor, torch.Tensor) or tensor.ndim != 3 or not isinstance(entry[1], dict):
            got = tuple(tensor.shape) if isinstance(tensor, torch.Tensor) else type(tensor).__name__
            raise NodeInputError(f"{node}: '{name}' is not a text conditioning (each entry must be a (batch, tokens, "
                                 f"width) encoding and its options, got {got}); connect a CLIP Text Encode")
        if width is not None and tensor.shape[-1] != width and tensor.shape[-1] not in adapter_widths(model):
            raise NodeInputError(
                f"{node}: this '{name}' conditioning is {_named(tensor.shape[-1])}; the {model_name(model)} model "
                f"takes {_named(width)}: encode it with the model's own text encoder")
        if not bool(torch.isfinite(tensor).all()):
            raise NodeInputError(f"{node}: the '{name}' conditioning holds NaN or infinite values")
    return conditioning
