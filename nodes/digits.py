"""Digits nodes: a small trained class-conditional UNet (scikit-learn's digits) that any CPU samples in seconds.

A complete txt2img graph: Digits Model Loader -> Digit Prompt -> EmptyLatentImage (128 x 128, i.e. a 4x16x16
latent) -> stock KSampler -> Digits Decode -> SaveImage/PreviewImage. Guidance nodes sit between the loader and the
sampler, as on any other model. See nodes/digits_model.py and scripts/train_digits.py.
"""
import torch
from comfy_api.latest import io

from . import digits_model as dm
from .common import CATEGORY, PREFIX, NodeInputError, check_number, schema

DigitsContext = io.Custom("GZ_DIGITS_CONTEXT")
NULL_CHOICE = "none (null context)"
DIGIT_CHOICES = [str(d) for d in range(10)] + [NULL_CHOICE]

LOADER = "Digits Model Loader (Guidance Zoo)"
PROMPT = "Digit Prompt (Guidance Zoo)"
DECODE = "Digits Decode (Guidance Zoo)"


class DigitsModelLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id=f"{PREFIX}DigitsModelLoader",
            display_name=LOADER,
            category=f"{CATEGORY}/digits",
            description=(
                "Loads the small digits model that ships with Guidance Zoo: ComfyUI's own SD1.5 UNet class with a tiny "
                "config (1.13M parameters, eps prediction, SD1.5's sigma schedule), trained on scikit-learn's 8x8 "
                "digits shown at 32x32, conditioned on the digit. Every sampler and guidance node applies to it "
                "unchanged, and it samples in well under a second on a CPU, so it shows what a guidance method "
                "really does. Use with Digit Prompt, an EmptyLatentImage of 128 x 128 and Digits Decode."),
            inputs=[
                io.Combo.Input("weights", options=dm.available_weights(), default=dm.DEFAULT_WEIGHTS,
                               tooltip="Weights file in the pack's assets/digits/ folder "
                                       "(made by scripts/train_digits.py)."),
            ],
            outputs=[
                io.Model.Output(display_name="MODEL", tooltip="The digits UNet, for KSampler and guidance nodes."),
                DigitsContext.Output(display_name="DIGITS_CONTEXT",
                                     tooltip="The learned per-digit contexts (the model's 'text encoder'); "
                                             "connect it to Digit Prompt."),
            ],
        )

    @classmethod
    def execute(cls, weights: str = dm.DEFAULT_WEIGHTS) -> io.NodeOutput:
        if weights not in dm.available_weights():
            raise NodeInputError(f"{LOADER}: unknown weights {weights!r}; have {dm.available_weights()}")
        try:
            patcher, context = dm.load_patcher(weights)
        except (OSError, ValueError, KeyError) as error:
            raise NodeInputError(f"{LOADER}: cannot load {weights}: {error}") from None
        return io.NodeOutput(patcher, context)


class DigitPrompt(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id=f"{PREFIX}DigitPrompt",
            display_name=PROMPT,
            category=f"{CATEGORY}/digits",
            description=(
                "The digits model's prompt: the learned context of one digit as positive conditioning, and the "
                "learned null context (what the model saw in 15% of training, in place of the digit) as negative "
                "conditioning, which is what classifier-free guidance pushes away from."),
            inputs=[
                DigitsContext.Input("digits_context", tooltip="From Digits Model Loader."),
                io.Combo.Input("digit", options=DIGIT_CHOICES, default="3",
                               tooltip="The digit to draw, 0-9, or the null context (an unconditional sample)."),
            ],
            outputs=[
                io.Conditioning.Output(display_name="positive", tooltip="The digit's context."),
                io.Conditioning.Output(display_name="negative", tooltip="The null context."),
            ],
        )

    @classmethod
    def execute(cls, digits_context, digit: str) -> io.NodeOutput:
        if digit not in DIGIT_CHOICES:
            raise NodeInputError(f"{PROMPT}: 'digit' must be one of {DIGIT_CHOICES}, got {digit!r}")
        if not (isinstance(digits_context, torch.Tensor) and digits_context.ndim == 3
                and digits_context.shape[0] == dm.NULL + 1):
            raise NodeInputError(f"{PROMPT}: 'digits_context' must come from {LOADER}")
        index = dm.NULL if digit == NULL_CHOICE else int(digit)
        return io.NodeOutput(dm.conditioning(digits_context, index), dm.conditioning(digits_context, dm.NULL))


class DigitsDecode(io.ComfyNode):
    @classmethod
    def define_schema(cls) -> io.Schema:
        return schema(
            node_id=f"{PREFIX}DigitsDecode",
            display_name=DECODE,
            category=f"{CATEGORY}/digits",
            description=(
                "The digits model's 'VAE decode': un-shuffles the 4-channel latent into the grey 32x32 digit, maps "
                "the training range to [0, 1] (values beyond it are clipped, which is what oversaturation looks like "
                "here) and enlarges it with nearest-neighbour scaling for viewing."),
            inputs=[
                io.Latent.Input("samples", tooltip="The sampled latent (from KSampler)."),
                io.Int.Input("scale", default=4, min=1, max=64,
                             tooltip="Nearest-neighbour enlargement: 4 turns the 32x32 digit into 128x128 pixels."),
            ],
            outputs=[io.Image.Output(tooltip="The digits as RGB images in [0, 1].")],
        )

    @classmethod
    def execute(cls, samples, scale: int = 4) -> io.NodeOutput:
        scale = int(check_number(DECODE, "scale", scale, 1, 64))
        latent = samples["samples"] if isinstance(samples, dict) else None
        if not isinstance(latent, torch.Tensor) or latent.ndim != 4 or latent.shape[1] != 4:
            shape = tuple(latent.shape) if isinstance(latent, torch.Tensor) else type(latent).__name__
            raise NodeInputError(f"{DECODE}: needs a 4-channel image latent [B, 4, H, W], got {shape}")
        unit = dm.pixels_to_unit(dm.latent_to_pixels(latent.cpu()))
        if scale > 1:
            unit = unit.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
        return io.NodeOutput(unit[..., None].expand(-1, -1, -1, 3).contiguous())
