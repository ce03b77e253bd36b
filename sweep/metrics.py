"""Cheap per-cell image metrics: saturation and clipping for any image; class accuracy on the digits model.

- sat: mean HSV saturation (0..1); clip_low / clip_high: fraction of channel values at 0 / at 255 (blown-out
  shadows / highlights, what oversaturation at a high cfg looks like);
- on a digits graph (Digit Prompt + Digits Decode), digit_acc: the fraction of the cell's images that the
  benchmark's classifier (the RBF SVC on the real digits of nodes/digits_model.py; its decision function,
  without the probability calibration the benchmark also fits) reads as the digit asked for.
  It needs scikit-learn and torch (ComfyUI's venv has both); without them the digits metric is left out.
"""
import importlib.util
import io
import os
import threading

from PIL import Image, ImageStat

PACK = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGIT_PROMPT = "GuidanceZooDigitPrompt"
DIGITS_DECODE = "GuidanceZooDigitsDecode"
_classifier = {}
_lock = threading.Lock()


def image_stats(data: bytes) -> dict:
    """sat, clip_low, clip_high of one encoded image."""
    image = Image.open(io.BytesIO(data)).convert("RGB")
    hist = image.histogram()
    values = image.width * image.height * 3
    low = sum(hist[i * 256] for i in range(3)) / values
    high = sum(hist[i * 256 + 255] for i in range(3)) / values
    sat = ImageStat.Stat(image.convert("HSV")).mean[1] / 255.0
    return {"sat": round(sat, 4), "clip_low": round(low, 4), "clip_high": round(high, 4)}


def asked_digit(prompt: dict) -> int | None:
    """The digit a digits graph draws (its Digit Prompt's digit), None for other graphs or the null context."""
    if not any(n["class_type"] == DIGITS_DECODE for n in prompt.values()):
        return None
    digit = next((n["inputs"].get("digit") for n in prompt.values() if n["class_type"] == DIGIT_PROMPT), None)
    return int(digit) if isinstance(digit, str) and digit.isdigit() else None


def _digits_model():
    """nodes/digits_model.py loaded by path (it imports only torch; the nodes package needs ComfyUI)."""
    spec = importlib.util.spec_from_file_location("guidance_zoo_digits_model",
                                                  os.path.join(PACK, "nodes", "digits_model.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def digit_classifier():
    """(digits_model module, fitted classifier), built once per process (thread-safe, so it can be built in the
    background while the first cells run); None without torch/scikit-learn."""
    with _lock:
        if "model" not in _classifier:
            try:
                dm = _digits_model()
                _classifier["model"] = (dm, dm.classifier(probability=False))
            except ImportError:
                _classifier["model"] = None
    return _classifier["model"]


def prepare(prompts: list[dict]) -> None:
    """Start building the digits classifier in the background if any prompt is a digits graph."""
    if any(asked_digit(p) is not None for p in prompts):
        threading.Thread(target=digit_classifier, name="digits classifier", daemon=True).start()


def read_digit(data: bytes, dm, svc) -> int:
    """The class the classifier gives a Digits Decode image (unit grey, enlarged) read back to the model's pixel
    size."""
    import torch
    image = Image.open(io.BytesIO(data)).convert("L").resize((dm.IMAGE_SIZE, dm.IMAGE_SIZE), Image.BOX)
    unit = torch.tensor(list(image.getdata()), dtype=torch.float64) / 255.0
    pixels = (unit * 2.0 - 1.0) * dm.RANGE
    return int(svc.predict(pixels.reshape(1, -1).numpy())[0])


def cell_metrics(prompt: dict, images: list[bytes]) -> dict:
    """The metrics of one cell: image stats averaged over its images, and digit_acc on digits graphs."""
    if not images:
        return {}
    stats = [image_stats(d) for d in images]
    out = {k: round(sum(s[k] for s in stats) / len(stats), 4) for k in stats[0]}
    digit = asked_digit(prompt)
    model = digit_classifier() if digit is not None else None
    if model is not None:
        dm, svc = model
        out["digit_acc"] = round(sum(read_digit(d, dm, svc) == digit for d in images) / len(images), 4)
    return out
