#!/usr/bin/env bash
# Runs the whole test suite on a real ComfyUI (built by setup_runtime.sh on first use). Extra args go to pytest.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$ROOT/scripts/setup_runtime.sh"
cd "$ROOT"
exec "$ROOT/.runtime/venv/bin/python" -m pytest tests "$@"
