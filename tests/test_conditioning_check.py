"""Every node that takes a CONDITIONING checks it against the model's text input before sampling: a conditioning of
another text encoder's width (or not a text encoding at all) is a NodeInputError naming the node, the input, what
the model takes and what arrived, never a raw torch error at sampling time."""
import re

import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)

from guidance_zoo.nodes import NODES
from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.conditioning import model_text_width


def conditioning_nodes() -> list:
    return [node for node in NODES if any(i.get_io_type() == "CONDITIONING" for i in node.define_schema().inputs)]


def cases() -> list:
    out = []
    for node in conditioning_nodes():
        schema = node.define_schema()
        for spec in schema.inputs:
            if spec.get_io_type() == "CONDITIONING":
                out.append(pytest.param(node, spec.id, id=f"{schema.node_id}-{spec.id}"))
    return out


def inputs_for(node, family: str, conds: dict) -> dict:
    """Every input of node: tiny models of family, the given conditionings, widget defaults."""
    values = {}
    for index, spec in enumerate(node.define_schema().inputs):
        kind = spec.get_io_type()
        if kind == "MODEL":
            values[spec.id] = tm.make_model(family, seed=index)
        elif kind == "CONDITIONING":
            values[spec.id] = conds[spec.id]
        else:
            values[spec.id] = spec.default
    return values


def test_every_text_conditioning_node_is_covered():
    names = {node.define_schema().display_name for node in conditioning_nodes()}
    assert {"NAG (Guidance Zoo)", "VSF (Guidance Zoo)", "Perp-Neg (Guidance Zoo)",
            "Perp-Neg Guider (Guidance Zoo)", "Autoguidance Guider (Guidance Zoo)"} <= names


@pytest.mark.parametrize("family", tm.FAMILIES)
def test_the_text_width_is_read_from_every_family(family):
    assert model_text_width(tm.make_model(family)) == tm.CTX


@pytest.mark.parametrize("family", ("sd15", "sd3", "wan21"))
@pytest.mark.parametrize("node,name", cases())
def test_a_conditioning_of_another_width_is_refused_naming_node_input_and_widths(node, name, family):
    schema = node.define_schema()
    if family != "sd15" and "NAG" not in schema.display_name and "VSF" not in schema.display_name:
        pytest.skip("the two-model and Perp-Neg nodes are checked on one family")
    positive, negative = tm.make_conds(family)
    good = {spec.id: positive for spec in schema.inputs if spec.get_io_type() == "CONDITIONING"}
    node.execute(**inputs_for(node, family, good))
    wrong = [[torch.randn(1, 77, 32), dict(negative[0][1])]]
    message = (rf"{re.escape(schema.display_name)}: this '{name}' conditioning is 32 "
               rf"wide; the \w+ model takes {tm.CTX} wide: encode it with the model's own text encoder")
    with pytest.raises(NodeInputError, match=message):
        node.execute(**inputs_for(node, family, dict(good, **{name: wrong})))


@pytest.mark.parametrize("bad", [[[torch.randn(77, tm.CTX), {}]], [["text", {}]],
                                 [[torch.full((1, 7, tm.CTX), float("nan")), {}]]])
def test_a_conditioning_that_is_no_text_encoding_is_refused(bad):
    node = next(n for n in conditioning_nodes() if n.define_schema().display_name == "NAG (Guidance Zoo)")
    with pytest.raises(NodeInputError, match=r"NAG \(Guidance Zoo\): .*'negative'"):
        node.execute(**inputs_for(node, "sd15", {"negative": bad}))


def test_real_encoder_widths_are_named():
    model = tm.make_model("flux", context_in_dim=4096)
    node = next(n for n in conditioning_nodes() if n.define_schema().display_name == "NAG (Guidance Zoo)")
    clip_l = [[torch.randn(1, 77, 768), {"pooled_output": torch.randn(1, tm.POOLED), "guidance": 3.5}]]
    with pytest.raises(NodeInputError, match=r"768 wide \(CLIP-L\); the Flux model takes 4096 wide \(T5-XXL"):
        node.execute(model, clip_l, 5.0, 2.5, 0.25, 0.0)
