"""Guidance Zoo demo: run every bundled workflow (workflows/*.json) in a headless ComfyUI and make a contact sheet.

    bash scripts/demo.sh [--out DIR] [--timeout S] [workflow.json ...]

Default: starts ComfyUI 0.3.75 from .runtime/ (`main.py --cpu`, loopback only, a temp base directory) with this
pack and the random-weight stand-in models of tests/standins.py, converts each workflow to API format with the
stand-in substitution of tests/workflow_format.py (real loaders -> stand-ins, 64 px, 4 steps), runs it, copies the
images and the API prompts sent (<name>.api.json) to the output folder (default output/demo-<timestamp>/) and
writes contact_sheet.png there: one column per workflow, labelled with the method and its settings. Stand-in
images come from random weights: they show that the graphs run, not what the methods look like.

With COMFYUI_URL=http://host:port set, the same workflows go unchanged (real model names and sizes) to that
running ComfyUI, which must have the pack and the models installed; images are fetched over GET /view.
"""
import argparse
import glob
import io
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from PIL import Image, ImageDraw, ImageFont  # noqa: E402

import standins  # noqa: E402
import workflow_format as wf  # noqa: E402
from comfy_server import ComfyServer, ServerError  # noqa: E402

OUR_NODES = {"GuidanceZooAPG": "APG", "GuidanceZooPAG": "PAG"}
SAMPLERS = ("KSampler", "KSamplerAdvanced")


def describe(prompt: dict) -> str:
    """A short label of the method(s) in an API prompt, e.g. 'APG eta 0 thr 15 mom -0.5 | cfg 10'."""
    parts = []
    for node in prompt.values():
        short = OUR_NODES.get(node["class_type"])
        if short:
            settings = " ".join(f"{k}={_fmt(v)}" for k, v in node["inputs"].items() if not isinstance(v, list))
            parts.append(f"{short} {settings}".strip())
    cfg = next((n["inputs"].get("cfg") for n in prompt.values() if n["class_type"] in SAMPLERS), None)
    method = " + ".join(parts) if parts else "baseline (no guidance node)"
    return method + (f" | cfg {_fmt(cfg)}" if cfg is not None else "")


def model_name(prompt: dict) -> str:
    """The diffusion model file a prompt loads (checkpoint or UNETLoader), for the labels."""
    for node in prompt.values():
        for key in ("ckpt_name", "unet_name"):
            if key in node["inputs"]:
                return str(node["inputs"][key])
    return "?"


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "(default)" if value == "" else str(value)


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _wrap(draw, text: str, font, width: int) -> list[str]:
    lines, line = [], ""
    for word in text.split(" "):
        trial = f"{line} {word}".strip()
        if draw.textlength(trial, font=font) <= width or not line:
            line = trial
        else:
            lines.append(line)
            line = word
    return lines + ([line] if line else [])


def contact_sheet(columns: list[tuple[str, str, Image.Image | None]], title: str, path: str, cell: int):
    """columns: (name, label, image or None when it failed); one column each, label above the image."""
    font, small = _font(16), _font(12)
    pad, line_h = 12, 16
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    labels = [(_wrap(probe, name, font, cell), _wrap(probe, label, small, cell)) for name, label, _ in columns]
    label_h = max(len(a) * (line_h + 4) + len(b) * line_h for a, b in labels) + 6
    title_lines = _wrap(probe, title, small, len(columns) * (cell + pad) - pad)
    top = pad + len(title_lines) * line_h + pad
    sheet = Image.new("RGB", (pad + len(columns) * (cell + pad), top + label_h + cell + pad), "white")
    draw = ImageDraw.Draw(sheet)
    for i, text in enumerate(title_lines):
        draw.text((pad, pad + i * line_h), text, fill=(60, 60, 60), font=small)
    for col, ((name, label, image), (name_lines, label_lines)) in enumerate(zip(columns, labels)):
        x, y = pad + col * (cell + pad), top
        for text in name_lines:
            draw.text((x, y), text, fill="black", font=font)
            y += line_h + 4
        for text in label_lines:
            draw.text((x, y), text, fill=(70, 70, 70), font=small)
            y += line_h
        box = (x, top + label_h, x + cell, top + label_h + cell)
        if image is None:
            draw.rectangle(box, outline=(200, 0, 0), width=3)
            draw.text((x + 10, box[1] + cell // 2), "FAILED", fill=(200, 0, 0), font=font)
            continue
        scale = cell / max(image.size)
        size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
        resample = Image.NEAREST if scale >= 2 else Image.LANCZOS
        sheet.paste(image.convert("RGB").resize(size, resample), (x, top + label_h))
    sheet.save(path)


def column_order(path: str) -> tuple:
    stem = os.path.basename(path)
    return (0 if stem.startswith("baseline") else 1, stem)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workflows", nargs="*", help="workflow files (default: workflows/*.json)")
    parser.add_argument("--out", help="output folder (default: output/demo-<timestamp>/)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per workflow")
    args = parser.parse_args(argv)

    paths = sorted(args.workflows or glob.glob(os.path.join(ROOT, "workflows", "*.json")), key=column_order)
    if not paths:
        print("no workflows found", file=sys.stderr)
        return 2
    out_dir = os.path.abspath(args.out or os.path.join(ROOT, "output", time.strftime("demo-%Y%m%d-%H%M%S")))
    os.makedirs(out_dir, exist_ok=True)
    url = os.environ.get("COMFYUI_URL")

    if url:
        print(f"using the running ComfyUI at {url} (real model names, no stand-ins)")
        server = ComfyServer(url=url)
    else:
        print("preparing stand-in models ...", end=" ", flush=True)
        t0 = time.time()
        models = standins.models_dir()
        print(f"ok {time.time() - t0:.1f} s ({models})")
        print("starting ComfyUI (CPU, 127.0.0.1) ...", end=" ", flush=True)
        server = ComfyServer(models_dir=models)
    columns, failures = [], 0
    try:
        server.start()
        if server.startup_seconds is not None:
            print(f"ok {server.startup_seconds:.1f} s")
        object_info = server.object_info()
        for i, path in enumerate(paths, 1):
            name = os.path.basename(path)
            stem = os.path.splitext(name)[0]
            print(f"[{i}/{len(paths)}] {name} ...", end=" ", flush=True)
            t0 = time.time()
            label, image = "", None
            try:
                prompt = wf.ui_to_api(wf.load_workflow(path), object_info)
                model = model_name(prompt)
                if not url:
                    prompt = wf.substitute_standins(prompt)
                    model = f"{model} -> stand-in {model_name(prompt)}"
                label = f"{describe(prompt)} | {model}"
                with open(os.path.join(out_dir, f"{stem}.api.json"), "w", encoding="utf-8") as f:
                    json.dump(prompt, f, indent=1)  # the exact prompt sent, to reproduce or inspect
                result = server.run(prompt, timeout=args.timeout)
                if not result.ok:
                    raise ServerError(result.error_message)
                records = result.images()
                if not records:
                    raise ServerError("the workflow produced no image")
                for n, record in enumerate(records):
                    data = server.view(record)
                    target = f"{stem}.png" if len(records) == 1 else f"{stem}_{n + 1:05d}.png"
                    with open(os.path.join(out_dir, target), "wb") as f:
                        f.write(data)
                    if n == 0:
                        image = Image.open(io.BytesIO(data))
                        image.load()
                print(f"ok {time.time() - t0:.1f} s")
            except (ServerError, wf.WorkflowError, wf.StandinError, OSError, ValueError) as error:
                failures += 1
                message = str(error).splitlines()[0] if str(error) else repr(error)
                print(f"FAILED {time.time() - t0:.1f} s: {message}")
            columns.append((name, label, image))
    except ServerError as error:
        print(f"FAILED: {error}")
        return 1
    finally:
        server.stop()

    if url:
        title = f"Guidance Zoo demo on {url}: same seed and prompt per workflow."
        cell = 384
    else:
        title = ("Guidance Zoo demo on random-weight stand-in models (tests/standins.py), 64 px, 4 steps: this shows "
                 "that every bundled graph runs, not how the methods look. Set COMFYUI_URL to run them on real models.")
        cell = 256
    sheet = os.path.join(out_dir, "contact_sheet.png")
    contact_sheet(columns, title, sheet, cell)
    print(f"{len(paths) - failures}/{len(paths)} workflows ok; images and contact sheet in {out_dir}")
    print(f"contact sheet: {sheet}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
