#!/usr/bin/env bash
# The GPU benchmark (scripts/bench_gpu.py): full-size random-weight SDXL 1024x1024 (fp16), Flux 1024x1024 (bf16) and
# Wan 2.1 1.3B 480p 33 frames (bf16), built on the GPU from ComfyUI's classes, 8 steps per method and core peer;
# one command under 8 minutes (--budget 420 s of benchmark, rows past it skipped); the markdown table comes last and
# is written to $OUT/bench_gpu.md after each model, so a run cut short still leaves one.
#
# On a machine whose python3 has CUDA torch (a lent device: its image has torch, torchvision, transformers, pytest,
# einops, safetensors, numpy, scipy, pillow, psutil, aiohttp), ComfyUI's tree and the few pure-Python packages the image lacks travel along:
#   here, once:   bash scripts/bench_gpu.sh --prepare      (.gpu/payload.tar.xz, git-ignored, ~40 MB: the wheels
#                 unpacked and ComfyUI 0.33's tree less its tests, xz-packed to fit the tool's 64 MiB; needs pip)
#   on the GPU:   bash scripts/bench_gpu.sh                 (device tool: carry .gpu, the packed payload)
# Then copy the table into docs/bench_gpu.md. Any args after the script go to bench_gpu.py (--models, --methods, --steps).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
WHEELS=(torchsde==0.2.6 trampoline==0.1.2 kornia==0.9.0 kornia_rs==0.1.9 spandrel==0.4.2 av==18.1.0 simpleeval==1.0.3
        alembic==1.20.1 SQLAlchemy==2.1.9 Mako==1.3.10 comfy-kitchen==0.2.31 comfy-aimdo==0.4.13 blake3==1.0.5)
PAYLOAD=.gpu/payload.tar.xz
if [ "${1:-}" = "--prepare" ]; then
  py="${2:-3.12}"  # the device's python3; another version only to try the payload here
  for d in /.whl/ /.gpu/; do grep -qx "$d" .git/info/exclude 2>/dev/null || echo "$d" >> .git/info/exclude; done
  [ -d .runtime/0.33.0/ComfyUI ] || bash scripts/setup_runtime.sh 0.33.0 >/dev/null
  rm -rf .whl .gpu && mkdir -p .gpu/stage/site
  for w in "${WHEELS[@]}"; do
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version "$py" --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
      --platform any -d .whl "$w" 2>&1 | grep -v "is ignored" || true
  done
  for w in .whl/*.whl; do unzip -q -o "$w" -d .gpu/stage/site; done
  # comfy-kitchen's compiled CUDA and HIP backends (235 MB) exceed the device tool's 64 MiB; ComfyUI then uses the
  # kitchen's eager (plain torch) ops, as on any machine where the extension does not load
  rm -f .gpu/stage/site/comfy_kitchen/backends/*/_C*.so
  tar -C .runtime/0.33.0 --exclude=ComfyUI/tests --exclude=ComfyUI/tests-unit --exclude=ComfyUI/blueprints \
    -cf - ComfyUI | tar -C .gpu/stage -xf -
  tar -C .gpu/stage -cJf "$PAYLOAD" site ComfyUI && rm -rf .gpu/stage .whl
  du -sh "$PAYLOAD"
  exit 0
fi
if [ -f "$PAYLOAD" ]; then  # on the device: carry .gpu (bash scripts/bench_gpu.sh --prepare made it)
  rm -rf /tmp/gpu && mkdir -p /tmp/gpu && python3 -c "import sys, tarfile; tarfile.open(sys.argv[1]).extractall(sys.argv[2])" "$PAYLOAD" /tmp/gpu
  export PYTHONPATH=/tmp/gpu/site${PYTHONPATH:+:$PYTHONPATH} COMFYUI_PATH=/tmp/gpu/ComfyUI
fi
export COMFYUI_PATH="${COMFYUI_PATH:-$ROOT/.runtime/0.33.0/ComfyUI}" PYTHONUNBUFFERED=1
out="${OUT:-/tmp}/bench_gpu.log"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || true
timeout 470 python3 scripts/bench_gpu.py --table "${OUT:-/tmp}/bench_gpu.md" "$@" 2>&1 | tee "$out"
