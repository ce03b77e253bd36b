#!/usr/bin/env bash
# Runs the whole test suite on every ComfyUI runtime this machine can build (scripts/setup_runtime.sh builds each
# on first use): 0.3.75 always, 0.33.0 where its tarball is (../shared/comfyui/ or COMFYUI_TARBALL).
#   --comfyui 0.3.75|0.33.0   only that version
#   COMFYUI_PATH=/path/to/ComfyUI   only that tree (venv of 0.3.75 if it is 0.3.75, else of 0.33.0)
# Other args go to pytest. Fails if the suite fails on any runtime; a version that cannot be built is a notice.
set -uo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VERSIONS=(0.3.75 0.33.0)
ARGS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --comfyui) VERSIONS=("$2"); shift 2 ;;
    --comfyui=*) VERSIONS=("${1#--comfyui=}"); shift ;;
    *) ARGS+=("$1"); shift ;;
  esac
done
if [ -n "${COMFYUI_PATH:-}" ]; then
  grep -q '__version__ = "0.3.75"' "$COMFYUI_PATH/comfyui_version.py" 2>/dev/null && VERSIONS=(0.3.75) || VERSIONS=(0.33.0)
fi

cd "$ROOT"
# one BLAS/OpenMP thread per process: the tiny models gain nothing from more, and the suite runs servers beside
# the test process (7 min instead of 26 on a loaded 2-core machine)
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"
status=0
summary=()
for v in "${VERSIONS[@]}"; do
  python="$(bash "$ROOT/scripts/setup_runtime.sh" "$v")"
  rc=$?
  if [ "$rc" = 3 ] && [ ${#VERSIONS[@]} -gt 1 ]; then summary+=("ComfyUI $v: not built here (see above)"); continue; fi
  [ "$rc" = 0 ] || { echo "[test] ComfyUI $v: runtime setup failed (rc $rc)" >&2; status=1; continue; }
  echo "[test] ComfyUI $v: $python -m pytest tests ${ARGS[*]:-}"
  start=$SECONDS
  "$python" -m pytest tests "${ARGS[@]}"
  rc=$?
  summary+=("ComfyUI $v: pytest exit $rc in $((SECONDS - start)) s")
  [ "$rc" = 0 ] || status=1
done
printf '[test] %s\n' "${summary[@]}"
exit $status
