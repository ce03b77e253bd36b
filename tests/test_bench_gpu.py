"""scripts/bench_gpu.py's --tiny mode (the tests' tiny configs on the CPU): the GPU benchmark builds, runs ours and
the core peers and prints its table, so it is ready for a lent device without one here."""
import os
import subprocess
import sys

import runtime_paths


def test_tiny_mode_prints_a_row_per_method_and_a_cell_per_model(tmp_path):
    script = os.path.join(runtime_paths.REPO, "scripts", "bench_gpu.py")
    table = tmp_path / "bench_gpu.md"
    done = subprocess.run([sys.executable, script, "--tiny", "--methods", "CFG,PAG,core PAG,core RescaleCFG,NAG",
                           "--table", str(table)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and not line.startswith("| method")]
    assert [row.split(" | ")[0][2:] for row in rows] == ["CFG", "PAG", "core PAG", "core RescaleCFG", "NAG"]
    cells = {row.split(" | ")[0][2:]: row.strip("| ").split(" | ")[1:] for row in rows}
    for name, row in cells.items():
        assert len(row) == 3 and all(cell.endswith("GiB") for cell in row), (name, row)
    # cfg 5 on sdxl and wan (cond + uncond), cfg 1 on the distilled flux (cond alone); PAG adds its perturbed pass
    assert [cell.split(", ")[0].endswith("(1.00x)") for cell in cells["CFG"]] == [True] * 3
    assert [cell.split(", ")[1] for cell in cells["CFG"]] == ["2 evals", "1 evals", "2 evals"]
    assert [cell.split(", ")[1] for cell in cells["PAG"]] == ["3 evals", "2 evals", "3 evals"]
    assert table.read_text().splitlines()[2:] == done.stdout.strip().splitlines()[2:]
