"""Runs the support tests (pytest -m support) and rewrites the README's support matrix from their results."""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

import support_matrix  # noqa: E402


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "support.json")
        env = {**os.environ, "GUIDANCE_ZOO_SUPPORT_OUT": out}
        subprocess.run([os.path.join(ROOT, ".runtime", "venv", "bin", "python"), "-m", "pytest", "tests", "-q",
                        "-m", "support", "-p", "no:cacheprovider"], cwd=ROOT, env=env, check=False)
        with open(out) as f:
            results = {(m, fam): [tuple(o) for o in outcomes] for m, fam, outcomes in json.load(f)}
    block = support_matrix.render(results)
    path = os.path.join(ROOT, "README.md")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(support_matrix.replace_block(text, block))
    print(block)
    return 0 if "?" not in block else 1


if __name__ == "__main__":
    sys.exit(main())
