"""Screenshots of every bundled workflow as the real frontend opens it (1920 x 1080, saved at 1280 x 720) into
docs/workflows/, and the gallery page docs/workflows.md. Runs the browser test with GZ_WORKFLOW_SCREENSHOTS.

    .runtime/0.3.75/venv/bin/python scripts/workflow_screenshots.py
"""
import os
import subprocess
import sys
import tempfile

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "docs", "workflows")


def shoot(folder: str) -> None:
    """Run the browser test, which writes one PNG per workflow into folder."""
    env = dict(os.environ, GZ_WORKFLOW_SCREENSHOTS=folder)
    subprocess.run([sys.executable, "-m", "pytest", "tests/test_workflows_browser.py", "-q", "-p", "no:cacheprovider",
                    "-k", "opens_readable"], cwd=ROOT, env=env, check=False)


def gallery(names: list[str]) -> str:
    lines = ["# Bundled workflows as they open", "",
             "Each file of `workflows/` dropped on the canvas of the real ComfyUI frontend (headless Chromium, "
             "1920 x 1080, shown at 1280 x 720), by `scripts/workflow_screenshots.py`.", ""]
    for name in names:
        lines += [f"## {name}", "", f"![{name}](workflows/{name}.png)", ""]
    return "\n".join(lines)


def main() -> None:
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        shoot(folder)
        names = sorted(name[:-4] for name in os.listdir(folder) if name.endswith(".png"))
        for name in names:
            image = Image.open(os.path.join(folder, f"{name}.png")).convert("RGB").resize((1280, 720), Image.LANCZOS)
            image.quantize(colors=128).save(os.path.join(OUT, f"{name}.png"), optimize=True)
    with open(os.path.join(ROOT, "docs", "workflows.md"), "w", encoding="utf-8") as f:
        f.write(gallery(names))
    print(f"{len(names)} screenshots in {OUT}")


if __name__ == "__main__":
    main()
