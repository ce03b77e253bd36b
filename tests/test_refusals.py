"""Every layer-choosing method refuses, at its node and with the fix named, the families whose adapter has no place
for it (the adapter's `refused` set): no silent no-op and no error deep in a sampler. S-CFG, SAG, NAG and VSF have
their own refusal tests beside their other tests."""
import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from support_matrix import cases

from guidance_zoo.nodes.asag import ASAG
from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.pag import PAG
from guidance_zoo.nodes.pladis import PLADIS
from guidance_zoo.nodes.s2 import S2Guidance
from guidance_zoo.nodes.seg import SEG
from guidance_zoo.nodes.slg import SkipLayerGuidance
from guidance_zoo.nodes.spg import SPG
from guidance_zoo.nodes.tpg import TPG

# METHOD_INFO name: (support-matrix row, the node applied at its defaults)
NODES = {
    "PAG": ("PAG", lambda m, f: PAG.execute(m, 3.0, "")),
    "SEG": ("SEG", lambda m, f: SEG.execute(m, 3.0, 10.0, "")),
    "ASAG": ("ASAG", lambda m, f: ASAG.execute(m, 3.0, 0.1, 10, "")),
    "TPG": ("TPG", lambda m, f: TPG.execute(m, 3.0, "", 0)),
    "S2-Guidance": ("S2-Guidance", lambda m, f: S2Guidance.execute(m, 0.25, 0.1, "", 0)),
    "Skip-Layer Guidance": ("SLG", lambda m, f: SkipLayerGuidance.execute(m, 3.0, "", 0.01, 0.15, 0.0)),
    "PLADIS": ("PLADIS", lambda m, f: PLADIS.execute(m, 2.0, 1.5, "")),
    "SPG": ("SPG", lambda m, f: SPG.execute(m, {"samples": torch.zeros((1,) + tm.FAMILIES[f][2])}, 1.0, "")),
}


def refused_cases() -> list:
    return [pytest.param(method, p.values[0], id=f"{method}-{p.id}", marks=p.marks)
            for method, (row, _) in NODES.items() for p in cases(row, [], tm.refusing(method))]


@pytest.mark.parametrize("method,family", refused_cases())
def test_refused_method_says_so_at_its_node(method, family):
    model = tm.make_model(family)
    with pytest.raises(NodeInputError, match=rf"\(Guidance Zoo\): the 'model' input is a \w+ model, where "
                                             rf"{method} has no place: .+support matrix"):
        NODES[method][1](model, family)


def test_every_family_adapter_refuses_only_methods_it_knows():
    """A refused name that is no METHOD_INFO name would refuse nothing."""
    from guidance_zoo.attention_patches.families import FAMILIES
    from guidance_zoo.nodes.methods import METHODS
    names = {info.name for info in METHODS}
    for family in FAMILIES:
        assert family.refused <= names, (family.name, family.refused - names)
