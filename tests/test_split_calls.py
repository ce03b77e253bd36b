"""Methods whose rows ride ComfyUI's cond/uncond call (NAG's negative row on joint attention, PAG's and SEG's
perturbed pass, NAG + VSF stacked) give the same result when ComfyUI's memory estimate splits the batch into one model
call per cond (what it does on a short GPU) as when it batches them; on joint-attention families and a UNet. SPG's
split is in test_spg.py."""
from contextlib import contextmanager

import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from tiny_models import assert_close, assert_differs

from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.nag import NAG
from guidance_zoo.nodes.pag import PAG
from guidance_zoo.nodes.seg import SEG
from guidance_zoo.nodes.vsf import VSF

STEPS = 3


def negative(family):
    return tm.make_conds(family, seed=7, tokens=5)[0]


def nag(model, family):
    return NAG.execute(model, negative(family), 5.0, 2.5, 0.25, 0.0).result[0]


def vsf(model, family):
    return VSF.execute(model, tm.make_conds(family, seed=9, tokens=4)[0], 3.0, 0.08).result[0]


def pag(model, family):
    return PAG.execute(model, 3.0, "").result[0]


def seg(model, family):
    return SEG.execute(model, 3.0, 9999999.0, "").result[0]


# name: (patches applied in order, conds per step with CFG: positive, negative, PAG/SEG's extra pass)
METHODS = {"nag": ((nag,), 2), "pag": ((pag,), 3), "nag+pag": ((nag, pag), 3), "pag+nag": ((pag, nag), 3),
           "seg": ((seg,), 3), "nag+vsf": ((nag, vsf), 2), "vsf+nag": ((vsf, nag), 2)}
CASES = [("flux", "nag"), ("sd3", "nag"), ("qwen_image", "nag"), ("sd15", "nag"), ("wan21", "nag"), ("flux", "nag+pag"),
         ("flux", "pag+nag"), ("sd15", "nag+pag"), ("flux", "pag"), ("sd15", "pag"), ("sd3", "seg"),
         ("sd3", "vsf+nag"), ("sdxl", "nag+vsf"), ("wan21", "vsf+nag")]


@contextmanager
def one_call_per_cond(model):
    """ComfyUI's batching sees no memory for two conds in one call (its estimate for any batch is infinite)."""
    model.model.memory_required = lambda *args, **kwargs: float("inf")
    try:
        yield
    finally:
        del model.model.memory_required


def patched(model, family, name):
    for step in METHODS[name][0]:
        model = step(model, family)
    return model


@pytest.mark.parametrize("family,name", CASES)
def test_split_calls_equal_the_batched_call(family, name):
    model = tm.make_model(family)
    counted, counter = tm.counted(patched(model, family, name))
    batched = tm.ksample(counted, family, cfg=4.0, steps=STEPS)
    split_model, split_counter = tm.counted(patched(model.clone(), family, name))
    with one_call_per_cond(model):
        split = tm.ksample(split_model, family, cfg=4.0, steps=STEPS)
    assert split_counter.calls == METHODS[name][1] * STEPS
    assert split_counter.samples >= counter.samples     # PAG's pass alone also carries a copy of the positive
    assert_close(split, batched, 1e-5)
    assert_differs(batched, tm.ksample(model, family, cfg=4.0, steps=STEPS))


def test_nag_and_vsf_stacked_act_both_or_are_refused_up_front():
    """Issue 19: VSF then NAG on SD3 (and either order on SD1.5-class and Wan) runs with both acting; NAG then VSF on
    SD3, where VSF would replace the attention NAG guides, and VSF on Flux are refused at the node, saying what to
    do instead."""
    for family, orders in (("sd3", ((vsf, nag),)), ("sdxl", ((vsf, nag), (nag, vsf))), ("wan21", ((nag, vsf),))):
        model = tm.make_model(family)
        alone = [tm.ksample(step(model, family), family, cfg=4.0) for step in (nag, vsf)]
        for first, second in orders:
            out = tm.ksample(second(first(model, family), family), family, cfg=4.0)
            assert torch.isfinite(out).all()
            for single in alone:
                assert_differs(out, single)
    with pytest.raises(NodeInputError, match=r"VSF \(Guidance Zoo\): this SD3 model already has NAG.*apply VSF first "
                                             r"and NAG after it"):
        vsf(nag(tm.make_model("sd3"), "sd3"), "sd3")
    with pytest.raises(NodeInputError, match=r"VSF \(Guidance Zoo\): Flux models are not supported; VSF runs on "
                                             r"SD1\.5, SDXL \(UNets\); SD3"):
        vsf(nag(tm.make_model("flux"), "flux"), "flux")
