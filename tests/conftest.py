import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "harness"))

import runtime_paths  # noqa: E402

runtime_paths.register_pack()

import json  # noqa: E402

import pytest  # noqa: E402

import support_matrix  # noqa: E402

SUPPORT_RESULTS: dict = {}


def pytest_configure(config):
    config.addinivalue_line("markers", "support(method, family, works=True): this test proves a cell of the README's "
                                       "support matrix (see harness/support_matrix.py)")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    report = (yield).get_result()
    if report.when == "call" or (report.when == "setup" and not report.passed):
        for mark in item.iter_markers("support"):
            method, family = mark.args
            SUPPORT_RESULTS.setdefault((method, family), []).append(
                (mark.kwargs.get("works", True), report.passed))


def pytest_sessionfinish(session, exitstatus):
    """On a whole-suite run, the README's matrix must be the one the support tests just produced."""
    out = os.environ.get("GUIDANCE_ZOO_SUPPORT_OUT")
    if out:
        with open(out, "w") as f:
            json.dump([[m, fam, o] for (m, fam), o in SUPPORT_RESULTS.items()], f)
    whole_suite = [os.path.normpath(a) for a in session.config.args] in (
        ["tests"], [os.path.join(runtime_paths.REPO, "tests")])
    if not whole_suite or not SUPPORT_RESULTS or session.config.option.keyword or session.config.option.markexpr:
        return
    version = support_matrix.comfyui_version(runtime_paths.comfyui_path())
    with open(os.path.join(runtime_paths.REPO, "README.md")) as f:
        claimed = support_matrix.claims(support_matrix.readme_block(f.read()) or "", version) or {}
    proved = support_matrix.expected_claims(SUPPORT_RESULTS, version)
    if claimed != proved:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        wrong = sorted(k for k in set(proved) | set(claimed) if claimed.get(k) != proved.get(k))
        print(f"\nREADME.md's support matrix differs from the test results on ComfyUI {version}; run "
              "scripts/support_matrix.py.\n" + "\n".join(
                  f"  {m} on {fam}: README {claimed.get((m, fam), '-')}, tests {proved.get((m, fam), '-')}"
                  for m, fam in wrong))
