"""scripts/bench_speed.py --quick (the tests' tiny models): the CPU benchmark builds a family, runs ours, a core peer
and the noise row, prints one table row each with every column, and writes the same markdown with --out."""
import os
import subprocess
import sys

import runtime_paths


def test_quick_mode_prints_a_full_row_per_method_and_writes_the_markdown(tmp_path):
    script = os.path.join(runtime_paths.REPO, "scripts", "bench_speed.py")
    out = tmp_path / "bench_speed.md"
    done = subprocess.run([sys.executable, script, "--quick", "--families", "sd3", "--methods",
                           "CFG,PLADIS,PAG,core RescaleCFG", "--out", str(out), "--note", "smoke test"],
                          capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and not line.startswith("| method")]
    assert [row.split(" | ")[0][2:] for row in rows] == ["CFG", "CFG (again)", "PLADIS", "PAG", "core RescaleCFG"]
    cells = {row.split(" | ")[0][2:]: row.strip("| ").split(" | ")[1:] for row in rows}
    assert all(len(values) == 6 for values in cells.values()), rows
    assert cells["CFG"][1:5] == ["1.00", "2", "1.00", "1.00"]
    assert cells["PAG"][2:4] == ["3", "1.50"] and cells["PLADIS"][2] == "2"
    text = out.read_text()
    assert "Machine: " in text and "smoke test" in text and "| CFG (again) |" in text
