#!/usr/bin/env bash
# Main job: runs the bundled digits workflows (workflows/digits_*.json, the trained digits model in assets/digits/)
# in a headless ComfyUI with this pack and writes real digits per guidance method plus a labelled sheet
# (digits_sheet.png) to output/demo-<timestamp>/ (or --out DIR). --standins also runs the other bundled workflows on
# random-weight stand-in models (contact_sheet.png). Builds the runtime on first use: ComfyUI 0.33.0 where its
# tarball is (../shared/comfyui/ or COMFYUI_TARBALL), else 0.3.75; --comfyui 0.3.75|0.33.0 picks one.
# COMFYUI_URL=http://127.0.0.1:8188 sends the workflows, unchanged, to that running ComfyUI instead.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSIONS=(0.33.0 0.3.75)
if [ "${1:-}" = --comfyui ]; then VERSIONS=("$2"); shift 2; fi
for v in "${VERSIONS[@]}"; do
  rc=0
  python="$(bash "$ROOT/scripts/setup_runtime.sh" "$v")" || rc=$?
  if [ "$rc" = 0 ]; then exec "$python" "$ROOT/scripts/demo.py" "$@"; fi
  [ "$rc" = 3 ] || exit "$rc"
done
exit 3
