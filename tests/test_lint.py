"""The whole tree passes ruff with the project's config (pyproject.toml [tool.ruff]): one lint run per test command."""
import subprocess
import sys

import runtime_paths


def test_ruff_finds_nothing():
    done = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", runtime_paths.REPO],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
