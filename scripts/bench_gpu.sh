#!/usr/bin/env bash
# The GPU benchmark (scripts/bench_gpu.py): full-size random-weight SDXL 1024x1024 (fp16), Flux 1024x1024 (bf16) and
# Wan 2.1 1.3B 480p 33 frames (bf16), built on the GPU from ComfyUI's classes, 8 steps per method and core peer;
# one command well under 8 minutes on an H200; the markdown table comes last (and in $OUT/bench_gpu.md).
#
# On a machine whose python3 has CUDA torch (a lent device: its image has torch, einops, safetensors, numpy, scipy,
# pillow, psutil, aiohttp, pydantic), ComfyUI's tree and the few pure-Python packages the image lacks travel along:
#   here, once:   bash scripts/bench_gpu.sh --prepare      (wheels into .whl/, git-ignored; needs pip's registry)
#   on the GPU:   bash scripts/bench_gpu.sh                 (device tool: carry .runtime/0.33.0/ComfyUI and .whl)
# Then copy the table into docs/bench_gpu.md. Any args after the script go to bench_gpu.py (--models, --methods, --steps).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WHEELS=(torchsde==0.2.6 trampoline==0.1.2 kornia==0.9.0 kornia_rs==0.1.9 spandrel==0.4.2 av==18.1.0 simpleeval==1.0.3
        alembic==1.20.1 SQLAlchemy==2.1.9 Mako==1.3.10 comfy-kitchen==0.2.31 comfy-aimdo==0.4.13 blake3==1.0.5)
if [ "${1:-}" = "--prepare" ]; then
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  [ -d .runtime/0.33.0/ComfyUI ] || bash scripts/setup_runtime.sh 0.33.0 >/dev/null
  for w in "${WHEELS[@]}"; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --platform any -d .whl "$w" || echo "[bench_gpu] could not fetch $w" >&2
  done
  du -sh .whl .runtime/0.33.0/ComfyUI
  exit 0
fi
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export COMFYUI_PATH="${COMFYUI_PATH:-$ROOT/.runtime/0.33.0/ComfyUI}" PYTHONUNBUFFERED=1
out="${OUT:-/tmp}/bench_gpu.log"
timeout 470 python3 scripts/bench_gpu.py "$@" 2>&1 | tee "$out"
sed -n '/^| method/,$p' "$out" > "${OUT:-/tmp}/bench_gpu.md"
