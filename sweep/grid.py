"""Labelled grid PNGs of a sweep: rows x columns = two of its dimensions, one page (a titled section) per
combination of the others; each cell shows its images side by side, a failed cell its error in red."""
import itertools
import os

from PIL import Image, ImageDraw, ImageFont

PAD, LINE, LABEL_W = 10, 15, 170
ERROR, MISSING = (200, 0, 0), (150, 150, 150)


def font(size: int):
    """Pillow's default font at a size (a fixed size before Pillow 10.1)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:
        return ImageFont.load_default()


def wrap(draw, text: str, face, width: int) -> list[str]:
    """Words of `text` in lines no wider than `width` pixels (a longer single word stays whole)."""
    lines, line = [], ""
    for word in text.split(" "):
        trial = f"{line} {word}".strip()
        if draw.textlength(trial, font=face) <= width or not line:
            line = trial
        else:
            lines.append(line)
            line = word
    return lines + ([line] if line else [])


def _load(out_dir: str, record: dict | None) -> list[Image.Image]:
    """The images of a finished cell (those still on disk)."""
    images = []
    for name in (record or {}).get("files", []):
        path = os.path.join(out_dir, name)
        if os.path.exists(path):
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
    return images


def _draw_cell(sheet, draw, box: tuple, record: dict | None, images: list, small) -> None:
    """One grid cell: the images side by side, or why there are none."""
    x, y, w, h = box
    if images:
        tile = min(w // len(images), h)
        for n, image in enumerate(images):
            scale = tile / max(image.size)
            resample = Image.NEAREST if scale >= 2 else Image.LANCZOS
            size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
            sheet.paste(image.resize(size, resample), (x + n * tile, y))
        return
    color = ERROR if record and record.get("status") == "error" else MISSING
    text = (record or {}).get("error") or ("no image" if record else "not run")
    draw.rectangle((x, y, x + w - 1, y + h - 1), outline=color, width=2)
    for i, line in enumerate(wrap(draw, text, small, w - 8)[: h // LINE - 1]):
        draw.text((x + 4, y + 4 + i * LINE), line, fill=color, font=small)


def grid_png(path: str, title: str, dims: list, rows: int, cols: int, cells: dict, records: dict,
             out_dir: str, cell_w: int = 192) -> str:
    """Write one grid: dims[rows] down, dims[cols] across (the same dim: a single row), pages for the rest.
    cells maps coordinates to Cell; records maps cell keys to manifest records."""
    big, small = font(14), font(12)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    row_dim, col_dim = dims[rows], dims[cols]
    row_values = [None] if rows == cols else range(len(row_dim.values))
    others = [i for i in range(len(dims)) if i not in (rows, cols)]
    pages = list(itertools.product(*(range(len(dims[i].values)) for i in others)))
    col_labels = [wrap(probe, col_dim.label(c), small, cell_w) for c in range(len(col_dim.values))]
    head_h = max(len(lines) for lines in col_labels) * LINE + 4
    cell_h = max(cell_w // max(_batch(records), 1), 48)
    title_lines = wrap(probe, title, small, LABEL_W + len(col_labels) * (cell_w + PAD))
    page_h = LINE + 6 + head_h + len(row_values) * (cell_h + PAD)
    width = PAD + LABEL_W + len(col_labels) * (cell_w + PAD)
    sheet = Image.new("RGB", (width, PAD + len(title_lines) * LINE + PAD + len(pages) * page_h), "white")
    draw = ImageDraw.Draw(sheet)
    for i, line in enumerate(title_lines):
        draw.text((PAD, PAD + i * LINE), line, fill=(60, 60, 60), font=small)
    y = PAD + len(title_lines) * LINE + PAD
    for page in pages:
        caption = " | ".join(dims[i].label(v) for i, v in zip(others, page)) or row_dim.name
        draw.text((PAD, y), caption, fill="black", font=big)
        y += LINE + 6
        for c, lines in enumerate(col_labels):
            for i, line in enumerate(lines):
                draw.text((PAD + LABEL_W + c * (cell_w + PAD), y + i * LINE), line, fill="black", font=small)
        y += head_h
        for r in row_values:
            if r is not None:
                for i, line in enumerate(wrap(probe, row_dim.label(r), small, LABEL_W - PAD)[: cell_h // LINE]):
                    draw.text((PAD, y + i * LINE), line, fill="black", font=small)
            for c in range(len(col_labels)):
                coords = _coords(len(dims), {rows: r, cols: c, **dict(zip(others, page))})
                cell = cells.get(coords)
                record = records.get(cell.key) if cell else None
                box = (PAD + LABEL_W + c * (cell_w + PAD), y, cell_w, cell_h)
                _draw_cell(sheet, draw, box, record, _load(out_dir, record), small)
            y += cell_h + PAD
    sheet.save(path)
    return path


def _coords(n: int, placed: dict) -> tuple:
    """A cell's coordinate tuple from {dim index: value index} (a dim shown as the only row gets its column)."""
    return tuple(placed[i] if placed.get(i) is not None else 0 for i in range(n))


def _batch(records: dict) -> int:
    """The most images any cell has (the tiles per cell)."""
    return max((len(r.get("files", [])) for r in records.values()), default=1)
