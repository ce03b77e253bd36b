"""The README's measured figures are what scripts/measured_figures.py measures now (see harness/measured_figures.py)."""
import importlib.util
import os

import measured_figures as mf
import runtime_paths
import support_matrix


def readme_text() -> str:
    with open(os.path.join(runtime_paths.REPO, "README.md")) as f:
        return f.read()


def test_readme_cost_figures_are_what_this_comfyui_measures_now():
    version = support_matrix.comfyui_version(runtime_paths.comfyui_path())
    block = mf.readme_block(readme_text())
    assert block is not None, "README.md has no measured-figures block: run scripts/measured_figures.py"
    claimed = mf.claims(block, version)
    assert claimed is not None, f"README.md's measured figures do not cover ComfyUI {version}"
    measured = mf.measure_all()
    keys = list(measured) + [key for key in claimed if key not in measured]
    wrong = [f"  {' | '.join(key)}: README {claimed.get(key, '-')}, measured {measured.get(key, '-')}"
             for key in keys if claimed.get(key) != measured.get(key)]
    assert not wrong, (f"README.md's measured figures differ from what ComfyUI {version} measures; run "
                       "scripts/measured_figures.py\n" + "\n".join(wrong))


def test_readme_digits_figure_is_the_digits_benchmarks():
    with open(os.path.join(runtime_paths.REPO, "docs", "benchmark.md")) as f:
        sentence = mf.digits_sentence(f.read())
    assert sentence in mf.readme_block(readme_text()), "run scripts/measured_figures.py"


def test_readme_memory_block_states_the_bench_model_and_every_bench_setting():
    block = mf.readme_block(readme_text(), mf.MEMORY_START, mf.MEMORY_END)
    assert block is not None, "README.md has no measured-memory block: run scripts/measured_figures.py --memory"
    spec = importlib.util.spec_from_file_location("bench_two_model",
                                                  os.path.join(runtime_paths.REPO, "scripts", "bench_two_model.py"))
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    size, settings = mf.memory_claims(block)
    assert size == mf.size_text(*mf.bench_model_size())
    assert settings == list(bench.SETTINGS), "run scripts/measured_figures.py --memory"


def test_a_figure_that_differs_between_versions_is_stated_per_version():
    keys = [figure.key() for figure in mf.FIGURES]
    old = {key: ("20", "10", "2 x10") for key in keys}
    new = {**old, keys[1]: ("30", "10", "3 x10")}
    block = mf.render({"0.3.75": old, "0.33.0": new}, "| AdaptiveGuidance @ cfg 4 (threshold 0.991) |" + " x |" * 6
                      + " 34 |")
    assert "| 20 (0.3.75); 30 (0.33.0) | 10 | 2 x10 (0.3.75); 3 x10 (0.33.0) |" in block
    assert mf.claims(block, "0.3.75") == old and mf.claims(block, "0.33.0") == new
    assert mf.claims(block, "0.38.0") is None
