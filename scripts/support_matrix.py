"""Runs the support tests (pytest -m support) on every ComfyUI runtime that builds here (scripts/setup_runtime.sh)
and rewrites the README's support matrix from their results, cell by cell per version."""
import json
import os
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "harness"))

import runtime_paths  # noqa: E402
import support_matrix  # noqa: E402




def run_version(version: str) -> dict | None:
    """{(method, family): outcomes} of the support tests on one runtime, None if it cannot be built here."""
    python = runtime_paths.runtime_python(version)
    if python is None:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "support.json")
        env = {**os.environ, "GUIDANCE_ZOO_SUPPORT_OUT": out}
        env.pop("COMFYUI_PATH", None)
        subprocess.run([python, "-m", "pytest", "tests", "-q", "-m", "support", "-p", "no:cacheprovider"],
                       cwd=ROOT, env=env, check=False)
        with open(out) as f:
            return {(m, fam): [tuple(o) for o in outcomes] for m, fam, outcomes in json.load(f)}


def main() -> int:
    results = {v: r for v in runtime_paths.COMFYUI_VERSIONS if (r := run_version(v)) is not None}
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
