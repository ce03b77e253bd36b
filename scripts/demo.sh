#!/usr/bin/env bash
# Main job: runs the bundled digits workflows (workflows/digits_*.json, the trained digits model in assets/digits/)
# in a headless ComfyUI with this pack and writes real digits per guidance method plus a labelled sheet
# (digits_sheet.png) to output/demo-<timestamp>/ (or --out DIR). --standins also runs the other bundled workflows on
# random-weight stand-in models (contact_sheet.png). Builds the runtime on first use.
# COMFYUI_URL=http://127.0.0.1:8188 sends the workflows, unchanged, to that running ComfyUI instead.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_runtime.sh"
exec "$ROOT/.runtime/venv/bin/python" "$ROOT/scripts/demo.py" "$@"
