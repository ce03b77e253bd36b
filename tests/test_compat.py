"""The newer V3 schema features, used where the running ComfyUI has them (guiders/compat.py detects them)."""
import runtime_paths

runtime_paths.use_comfyui()

import pytest  # noqa: E402

from guidance_zoo.guiders import compat  # noqa: E402
from guidance_zoo.nodes import NODES  # noqa: E402
from guidance_zoo.nodes.common import EXPERT_INPUTS  # noqa: E402

NEWER = pytest.mark.skipif(not compat.INPUTS_FOLD_ADVANCED, reason="this ComfyUI has no 'advanced' inputs (0.3.75)")


def schema_inputs(node) -> dict:
    return {item.id: item for item in node.define_schema().inputs}


def test_features_agree():
    """Both features came with the same ComfyUI generation; a runtime with only one would be a new case to look at."""
    assert compat.INPUTS_FOLD_ADVANCED == compat.SCHEMA_SEARCH_ALIASES


@NEWER
def test_expert_inputs_are_advanced_and_the_scale_is_not():
    pag = schema_inputs(next(n for n in NODES if n.__name__ == "PAG"))
    assert pag["layers"].advanced and pag["scale_schedule"].advanced
    assert not pag["scale"].advanced
    folded = {i.id for n in NODES for i in n.define_schema().inputs if getattr(i, "advanced", None)}
    assert folded <= EXPERT_INPUTS and {"layers", "momentum", "seed", "scale_schedule"} <= folded


@NEWER
def test_search_aliases_reach_the_node_search():
    info = {n.__name__: n.GET_SCHEMA().get_v1_info(n) for n in NODES}
    assert "perturbed attention guidance" in info["PAG"].search_aliases
    assert "negative prompt at cfg 1" in info["NAG"].search_aliases
    assert sum(1 for i in info.values() if i.search_aliases) >= 25


@pytest.mark.skipif(compat.INPUTS_FOLD_ADVANCED, reason="checks the older ComfyUI (0.3.75) path")
def test_older_comfyui_gets_plain_schemas():
    for node in NODES:
        schema = node.define_schema()
        assert not getattr(schema, "search_aliases", None)
        assert all(not getattr(i, "advanced", None) for i in schema.inputs)
