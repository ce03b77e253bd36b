"""The bundled workflows are the generators' output (scripts/make_workflows.py, make_digits_workflows.py): layout,
group, fixed seeds and a note written from the method nodes' metadata. The browser checks are in
test_workflows_browser.py; these need no browser."""
import json
import os
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "scripts"))
import make_digits_workflows  # noqa: E402
import make_workflows  # noqa: E402
import workflow_notes  # noqa: E402

BUILDS = {**{name: build for name, build in make_workflows.WORKFLOWS.items()},
          **{stem: (lambda n, spec=spec: make_digits_workflows.build(n, *spec))
             for stem, spec in make_digits_workflows.WORKFLOWS.items()}}


def test_every_bundled_workflow_is_generated():
    on_disk = {name[:-5] for name in os.listdir(os.path.join(REPO, "workflows")) if name.endswith(".json")}
    assert on_disk == set(BUILDS)


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_workflow_file_equals_generator_output(name):
    with open(os.path.join(REPO, "workflows", f"{name}.json"), encoding="utf-8") as f:
        assert json.load(f) == json.loads(json.dumps(BUILDS[name](name))), f"rerun the generators for {name}"


@pytest.mark.parametrize("name", sorted(BUILDS))
def test_note_comes_from_the_method_nodes(name):
    workflow = BUILDS[name](name)
    note = next(n for n in workflow["nodes"] if n["type"] == "MarkdownNote")["widgets_values"][0]
    info = workflow_notes.node_info()
    for node in workflow["nodes"]:
        if node["type"] in info and node["type"] not in {"GuidanceZooDigitsModelLoader", "GuidanceZooDigitPrompt",
                                                           "GuidanceZooDigitsDecode"}:
            assert info[node["type"]]["description"] in note
    assert "cfg" in note and ("Model files" in note or "ships with Guidance Zoo" in note)
    seeded = {"KSampler", "RandomNoise", "GuidanceZooTPG", "GuidanceZooS2Guidance"}
    seeds = [n["widgets_values"] for n in workflow["nodes"] if n["type"] in seeded]
    assert all("fixed" in values for values in seeds)
