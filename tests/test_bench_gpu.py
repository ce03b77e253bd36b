"""scripts/bench_gpu.py's --tiny mode (the tests' tiny configs on the CPU): the GPU benchmark builds, runs ours and
the core peers and prints its table, so it is ready for a lent device without one here."""
import os
import subprocess
import sys

import runtime_paths


def test_tiny_mode_prints_a_row_per_method_and_a_cell_per_model():
    script = os.path.join(runtime_paths.REPO, "scripts", "bench_gpu.py")
    done = subprocess.run([sys.executable, script, "--tiny", "--methods", "CFG,PAG,core PAG,core RescaleCFG,NAG"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and not line.startswith("| method")]
    assert [row.split(" | ")[0][2:] for row in rows] == ["CFG", "PAG", "core PAG", "core RescaleCFG", "NAG"]
    for row in rows:
        cells = row.strip("| ").split(" | ")[1:]
        assert len(cells) == 3 and all(cell.endswith("GiB") for cell in cells), row
