"""HunyuanVideo, HunyuanVideo 1.5 and HunyuanImage 2.1 (comfy/ldm/hunyuan_video): a text token refiner, then Flux's
double-stream and single-stream blocks with "dit" block patches. ComfyUI 0.33 puts the text tokens first in the joint
sequence, 0.3.75 last (its double blocks are flipped_img_txt). The text stream also carries ByT5 glyph tokens (after
the prompt on HunyuanImage 2.1, before it on HunyuanVideo 1.5) and HunyuanVideo 1.5's vision tokens (first)."""
from __future__ import annotations

from .flux import DoubleSingleStream

_VSF_WHY = ("its text token refiner runs self-attention over the whole prompt and pools it into the modulation, so "
            "a negative appended to the prompt (VSF's layout) would change the prompt's own tokens")


class Hunyuan(DoubleSingleStream):
    name = "hunyuan"
    label = "HunyuanVideo, HunyuanImage 2.1"
    config_classes = ("HunyuanVideo", "HunyuanVideoI2V", "HunyuanVideoSkyreelsI2V", "HunyuanImage21",
                      "HunyuanImage21Refiner")
    time_embeddings = ("time_in",)
    refused = frozenset({"S-CFG", "VSF", "SAG"})
    refusal_reasons = {"VSF": _VSF_WHY}
    prompt_last = False          # the prompt's tokens end the text stream (extra text-stream tokens come first)

    def matches(self, diffusion_model) -> bool:
        return (type(diffusion_model).__name__ == "HunyuanVideo"
                and all(hasattr(diffusion_model, name) for name in ("txt_in", "double_blocks", "single_blocks"))
                and (getattr(diffusion_model, "cond_type_embedding", None) is not None) == self.prompt_last)

    def text_widths(self, diffusion_model) -> tuple[int, ...]:
        return (diffusion_model.txt_in.input_embedder.in_features,)       # the token refiner's input projection

    def prompt_start(self, text: slice, context_len: int) -> int:
        if self.prompt_last:
            return text.stop - context_len
        return super().prompt_start(text, context_len)


class HunyuanVideo15(Hunyuan):
    """HunyuanVideo 1.5: its text stream is [vision tokens, ByT5 glyph tokens, prompt] (cond type embeddings)."""
    name = "hunyuan_video15"
    label = "HunyuanVideo 1.5"
    config_classes = ("HunyuanVideo15", "HunyuanVideo15_SR_Distilled")
    prompt_last = True


HUNYUAN = Hunyuan()
HUNYUAN_VIDEO15 = HunyuanVideo15()
