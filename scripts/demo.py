"""Guidance Zoo demo: real digits per guidance method from the bundled digits model, in a headless ComfyUI.

    bash scripts/demo.sh [--out DIR] [--timeout S] [--standins] [workflow.json ...]

Default: starts the ComfyUI beside the running venv (.runtime/<version>/: `main.py --cpu`, loopback only, a temp
base directory) with this pack and runs the bundled digits workflows (workflows/digits_*.json: the trained digits
model that ships with the pack in assets/digits/, Digit Prompt, EmptyLatentImage, stock KSampler, Digits Decode,
SaveImage; one guidance
setting per file). Each workflow runs once per digit 0-9 (the Digit Prompt's digit is set in the API prompt; the
workflow's batch gives several seeds). Images, the API prompts sent (<name>.api.json) and digits_sheet.png (one
column per workflow, one row per digit) go to the output folder (default output/demo-<timestamp>/).

--standins also runs the other bundled workflows (SDXL, Flux, ...) on the random-weight stand-in models of
harness/standins.py, converted with the stand-in substitution of harness/workflow_format.py (real loaders -> stand-ins,
64 px, 4 steps), and writes contact_sheet.png: one column per workflow, labelled with the method and its settings.
Stand-in images come from random weights: they show that the graphs run, not what the methods look like.
Workflow files given as arguments run as they are: digits_* ones as digit grids, the others on stand-ins.

With COMFYUI_URL=http://host:port set, the same workflows go unchanged (real model names and sizes) to that
running ComfyUI, which must have the pack (and, for the non-digits workflows, the models) installed; images are
fetched over GET /view.
"""
import argparse
import glob
import io
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "harness"))

from PIL import Image, ImageDraw  # noqa: E402

import standins  # noqa: E402
import workflow_format as wf  # noqa: E402
from comfy_server import ComfyServer, ServerError  # noqa: E402
from guidance_zoo.sweep.grid import font as _font, wrap as _wrap  # noqa: E402  (the pack, registered by wf)

SAMPLERS = ("KSampler", "KSamplerAdvanced")
OUR_PREFIX = "GuidanceZoo"


def describe(prompt: dict, skip=frozenset(), none: str = "baseline (no guidance node)") -> str:
    """A short label of the Guidance Zoo method node(s) in an API prompt (those in skip left out), e.g.
    'APG eta=0 norm_threshold=15 momentum=-0.5 | cfg 10'; none when there is no such node."""
    parts = []
    for node in prompt.values():
        kind = node["class_type"]
        if kind.startswith(OUR_PREFIX) and kind not in skip:
            settings = " ".join(f"{k}={_fmt(v)}" for k, v in node["inputs"].items() if not isinstance(v, list))
            parts.append(f"{kind.removeprefix(OUR_PREFIX)} {settings}".strip())
    cfg = next((n["inputs"].get("cfg") for n in prompt.values() if n["class_type"] in SAMPLERS), None)
    method = " + ".join(parts) if parts else none
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


def _draw_title(draw, title_lines: list[str], pad: int, line_h: int, small) -> None:
    for i, text in enumerate(title_lines):
        draw.text((pad, pad + i * line_h), text, fill=(60, 60, 60), font=small)


def _draw_column_label(draw, x: int, y: int, name_lines: list[str], label_lines: list[str], font, small,
                       line_h: int) -> None:
    """A column's name (bold size) and its settings label, top-down from (x, y)."""
    for text in name_lines:
        draw.text((x, y), text, fill="black", font=font)
        y += line_h + 4
    for text in label_lines:
        draw.text((x, y), text, fill=(70, 70, 70), font=small)
        y += line_h


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
    _draw_title(draw, title_lines, pad, line_h, small)
    for col, ((_name, _label, image), (name_lines, label_lines)) in enumerate(zip(columns, labels)):
        x = pad + col * (cell + pad)
        _draw_column_label(draw, x, top, name_lines, label_lines, font, small, line_h)
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


DIGITS_PREFIX = "digits_"
DIGIT_PROMPT = "GuidanceZooDigitPrompt"
DIGITS_OWN = {"GuidanceZooDigitsModelLoader", DIGIT_PROMPT, "GuidanceZooDigitsDecode"}


def is_digits(path: str) -> bool:
    return os.path.basename(path).startswith(DIGITS_PREFIX)


def describe_digits(prompt: dict) -> str:
    """'APG eta=0 norm_threshold=15 momentum=-0.5 | cfg 12' for a digits prompt (any Guidance Zoo method node)."""
    return describe(prompt, DIGITS_OWN, "CFG only")


def digits_order(item) -> tuple:
    """Columns by cfg, then plain CFG before methods, then name."""
    name, prompt = item
    cfg = next((n["inputs"].get("cfg", 0) for n in prompt.values() if n["class_type"] in SAMPLERS), 0)
    has_method = any(n["class_type"].startswith(OUR_PREFIX) and n["class_type"] not in DIGITS_OWN
                     for n in prompt.values())
    return (cfg, has_method, name)


def run_digits(server, prompts: list, out_dir: str, timeout: float):
    """Runs each digits prompt once per digit; returns (columns [(name, label, [[PIL per seed] per digit])], fails)."""
    columns, failures = [], 0
    for i, (name, prompt) in enumerate(sorted(prompts, key=digits_order), 1):
        stem = os.path.splitext(name)[0]
        print(f"[{i}/{len(prompts)}] {name} digits 0-9 ...", end=" ", flush=True)
        t0 = time.time()
        grid = None
        try:
            prompt_ids = [k for k, n in prompt.items() if n["class_type"] == DIGIT_PROMPT]
            if not prompt_ids:
                raise ValueError(f"no {DIGIT_PROMPT} node")
            with open(os.path.join(out_dir, f"{stem}.api.json"), "w", encoding="utf-8") as f:
                json.dump(prompt, f, indent=1)  # the prompt sent, with digit 0 ... 9 in the Digit Prompt
            grid = []
            for digit in range(10):
                sent = json.loads(json.dumps(prompt))
                for k in prompt_ids:
                    sent[k]["inputs"]["digit"] = str(digit)
                result = server.run(sent, timeout=timeout)
                if not result.ok:
                    raise ServerError(result.error_message)
                records = result.images()
                if not records:
                    raise ServerError("the workflow produced no image")
                row = []
                for n, record in enumerate(records):
                    data = server.view(record)
                    with open(os.path.join(out_dir, f"{stem}_digit{digit}_{n + 1}.png"), "wb") as f:
                        f.write(data)
                    image = Image.open(io.BytesIO(data))
                    image.load()
                    row.append(image)
                grid.append(row)
            print(f"ok {time.time() - t0:.1f} s")
        except (ServerError, OSError, ValueError) as error:
            failures += 1
            grid = None
            message = str(error).splitlines()[0] if str(error) else repr(error)
            print(f"FAILED {time.time() - t0:.1f} s: {message}")
        columns.append((name, describe_digits(prompt), grid))
    return columns, failures


def digits_sheet(columns, title: str, path: str, tile: int = 48):
    """One column per workflow (label on top), one row per digit, the batch's seeds side by side."""
    font, small = _font(16), _font(12)
    pad, line_h, gap = 12, 16, 1
    per = max((len(row) for _, _, grid in columns if grid for row in grid), default=1)
    col_w = per * (tile + gap) - gap
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    labels = [(_wrap(probe, name, font, col_w), _wrap(probe, label, small, col_w)) for name, label, _ in columns]
    label_h = max(len(a) * (line_h + 4) + len(b) * line_h for a, b in labels) + 6
    left = 28
    title_lines = _wrap(probe, title, small, left + len(columns) * (col_w + pad) - pad)
    top = pad + len(title_lines) * line_h + pad
    height = top + label_h + 10 * (tile + gap) + pad
    sheet = Image.new("RGB", (pad + left + len(columns) * (col_w + pad), height), "white")
    draw = ImageDraw.Draw(sheet)
    _draw_title(draw, title_lines, pad, line_h, small)
    y0 = top + label_h
    for digit in range(10):
        draw.text((pad + 4, y0 + digit * (tile + gap) + tile // 2 - 8), str(digit), fill="black", font=font)
    for col, ((_name, _label, grid), (name_lines, label_lines)) in enumerate(zip(columns, labels)):
        x = pad + left + col * (col_w + pad)
        _draw_column_label(draw, x, top, name_lines, label_lines, font, small, line_h)
        if grid is None:
            draw.rectangle((x, y0, x + col_w, y0 + 10 * (tile + gap)), outline=(200, 0, 0), width=3)
            draw.text((x + 10, y0 + 5 * tile), "FAILED", fill=(200, 0, 0), font=font)
            continue
        for digit, row in enumerate(grid):
            for n, image in enumerate(row):
                sheet.paste(image.convert("RGB").resize((tile, tile), Image.NEAREST),
                            (x + n * (tile + gap), y0 + digit * (tile + gap)))
    sheet.save(path)


def run_standins(server, paths: list, object_info: dict, out_dir: str, url: str | None, timeout: float):
    columns, failures = [], 0
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
            result = server.run(prompt, timeout=timeout)
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
    return columns, failures


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workflows", nargs="*",
                        help="workflow files (default: workflows/digits_*.json, plus the others with --standins)")
    parser.add_argument("--standins", action="store_true",
                        help="also run the non-digits bundled workflows on random-weight stand-in models")
    parser.add_argument("--out", help="output folder (default: output/demo-<timestamp>/)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds per workflow")
    args = parser.parse_args(argv)

    paths = args.workflows or sorted(glob.glob(os.path.join(ROOT, "workflows", "*.json")))
    digits_paths = [p for p in paths if is_digits(p)]
    other_paths = sorted((p for p in paths if not is_digits(p) and (args.workflows or args.standins)),
                         key=column_order)
    if not digits_paths and not other_paths:
        print("no workflows found", file=sys.stderr)
        return 2
    out_dir = os.path.abspath(args.out or os.path.join(ROOT, "output", time.strftime("demo-%Y%m%d-%H%M%S")))
    os.makedirs(out_dir, exist_ok=True)
    url = os.environ.get("COMFYUI_URL")

    if url:
        print(f"using the running ComfyUI at {url} (real model names, no stand-ins)")
        server = ComfyServer(url=url)
    else:
        models = None
        if other_paths:
            print("preparing stand-in models ...", end=" ", flush=True)
            t0 = time.time()
            models = standins.models_dir()
            print(f"ok {time.time() - t0:.1f} s ({models})")
        print("starting ComfyUI (CPU, 127.0.0.1) ...", end=" ", flush=True)
        # PyTorch's SDPA is ComfyUI's fastest attention on a CPU (its CPU default is sub-quadratic attention)
        server = ComfyServer(models_dir=models, extra_args=("--use-pytorch-cross-attention",))
    digit_columns, other_columns, failures = [], [], 0
    try:
        server.start()
        if server.startup_seconds is not None:
            print(f"ok {server.startup_seconds:.1f} s")
        object_info = server.object_info()
        prompts = []
        for path in digits_paths:
            try:
                prompts.append((os.path.basename(path), wf.ui_to_api(wf.load_workflow(path), object_info)))
            except (wf.WorkflowError, OSError, ValueError) as error:
                failures += 1
                print(f"{os.path.basename(path)}: FAILED to convert: {error}")
                digit_columns.append((os.path.basename(path), "", None))
        columns, fails = run_digits(server, prompts, out_dir, args.timeout)
        digit_columns += columns
        failures += fails
        if other_paths:
            other_columns, fails = run_standins(server, other_paths, object_info, out_dir, url, args.timeout)
            failures += fails
    except ServerError as error:
        print(f"FAILED: {error}")
        return 1
    finally:
        server.stop()

    total = len(digit_columns) + len(other_columns)
    if digit_columns:
        sheet = os.path.join(out_dir, "digits_sheet.png")
        digits_sheet(digit_columns, "Guidance Zoo on the digits model that ships with the pack (assets/digits/, "
                     "trained on scikit-learn's digits): one column per bundled digits workflow, one row per digit, "
                     "the batch's seeds side by side; same seeds in every column. Euler, 20 steps, 32x32 digits.",
                     sheet)
        print(f"digits sheet: {sheet}")
    if other_columns:
        if url:
            title = f"Guidance Zoo demo on {url}: same seed and prompt per workflow."
            cell = 384
        else:
            title = ("Guidance Zoo demo on random-weight stand-in models (harness/standins.py), 64 px, 4 steps: this "
                     "shows that every bundled graph runs, not how the methods look. Set COMFYUI_URL to run them on "
                     "real models.")
            cell = 256
        sheet = os.path.join(out_dir, "contact_sheet.png")
        contact_sheet(other_columns, title, sheet, cell)
        print(f"contact sheet: {sheet}")
    print(f"{total - failures}/{total} workflows ok; images and sheets in {out_dir}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
