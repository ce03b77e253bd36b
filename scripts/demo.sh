#!/usr/bin/env bash
# Main job: runs every bundled workflow (workflows/*.json) in a headless ComfyUI with this pack and writes the
# images plus a labelled contact sheet to output/demo-<timestamp>/ (or --out DIR). Builds the runtime on first use.
# COMFYUI_URL=http://127.0.0.1:8188 sends the workflows, unchanged, to that running ComfyUI instead.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_runtime.sh"
exec "$ROOT/.runtime/venv/bin/python" "$ROOT/scripts/demo.py" "$@"
