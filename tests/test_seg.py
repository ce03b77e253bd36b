"""SEG: kernels against full-softmax formulas, and the node on real ComfyUI with tiny models of every family."""
import pytest
import torch

import tiny_models as tm
from tiny_models import assert_differs
from support_matrix import cases

from guidance_zoo.core.seg import blur_queries, gaussian_kernel_size, seg_attention
from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.pag import PAG
from guidance_zoo.nodes.seg import SEG

INF = 9999999.0


def attention(q, k, v, scale):
    return torch.softmax(q @ k.transpose(-1, -2) * scale, dim=-1) @ v


@pytest.mark.parametrize("image", [slice(0, 12), slice(4, 12), slice(0, 8)])
def test_infinite_blur_replaces_image_queries_by_their_mean(image):
    g = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 3, 12, 4, generator=g) for _ in range(3))
    expected_q = q.clone()
    expected_q[:, :, image] = q[:, :, image].mean(dim=2, keepdim=True)
    out = seg_attention(q, k, v, 0.5, INF, image, None)
    torch.testing.assert_close(out, attention(expected_q, k, v, 0.5), rtol=1e-5, atol=1e-5)


def test_finite_blur_with_a_tiny_sigma_is_plain_attention_and_a_large_one_moves_towards_the_mean():
    g = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(1, 2, 16, 4, generator=g) for _ in range(3))
    torch.testing.assert_close(seg_attention(q, k, v, 0.5, 0.1, slice(0, 16), (4, 4)), attention(q, k, v, 0.5))
    blurred = blur_queries(q, (4, 4), 2.0)
    assert float((blurred - q.mean(2, keepdim=True)).norm()) < float((q - q.mean(2, keepdim=True)).norm())


def test_blur_keeps_a_constant_grid_and_uses_the_official_kernel_size():
    q = torch.ones(1, 2, 20, 3) * 0.7
    torch.testing.assert_close(blur_queries(q, (4, 5), 1.5), q)
    assert gaussian_kernel_size(1.0, 64) == 7 and gaussian_kernel_size(1.5, 64) == 9 and gaussian_kernel_size(9, 4) == 3


@pytest.mark.parametrize("family", cases("SEG", tm.supporting("SEG")))
def test_seg_changes_the_output_on_every_family(family):
    model = tm.make_model(family)
    plain = tm.ksample(model, family, cfg=4.0)
    out = tm.ksample(SEG.execute(model, 3.0, INF, "").result[0], family, cfg=4.0)
    assert torch.isfinite(out).all()
    assert_differs(out, plain)


@pytest.mark.parametrize("family", tm.UNETS)
def test_finite_blur_works_on_unets_and_differs_from_infinite(family):
    model = tm.make_model(family)
    finite = tm.ksample(SEG.execute(model, 3.0, 1.0, "").result[0], family, cfg=4.0)
    infinite = tm.ksample(SEG.execute(model, 3.0, INF, "").result[0], family, cfg=4.0)
    assert float((finite - infinite).abs().max()) > 1e-3


@pytest.mark.parametrize("family,sigma", [("sd15", 1.0), ("flux", INF), ("wan21", INF)])
def test_seg_batch_of_two_equals_two_single_runs_in_one_call_per_step(family, sigma):
    model = SEG.execute(tm.make_model(family), 3.0, sigma, "").result[0]
    counted, counter = tm.counted(model)
    both = tm.ksample(counted, family, cfg=4.0, seeds=(5, 6))
    assert counter.calls == 3 and counter.samples == 3 * 2 * 3
    for i, seed in enumerate((5, 6)):
        alone = tm.ksample(model, family, cfg=4.0, seeds=(seed,))
        torch.testing.assert_close(both[i:i + 1], alone, rtol=1e-4, atol=1e-4 * float(alone.abs().max()))


@pytest.mark.parametrize("family", ("sd15", "flux", "wan21"))
def test_seg_fp16_is_finite_and_stacks_with_pag_in_one_call(family):
    model = tm.make_model(family, dtype=torch.float16)
    stacked = PAG.execute(SEG.execute(model, 3.0, INF, "").result[0], 2.0, "").result[0]
    counted, counter = tm.counted(stacked)
    assert torch.isfinite(tm.ksample(counted, family, cfg=4.0)).all()
    assert counter.calls == 3 and counter.samples == 4 * 3


@pytest.mark.parametrize("kwargs,message", [
    (dict(scale=float("nan")), r"'scale' must be a finite number"),
    (dict(blur_sigma=0.0), r"'blur_sigma' must be above 0"),
    (dict(layers="middle 7"), r"layer 'middle 7' does not exist"),
])
def test_seg_rejects_bad_input_naming_the_node(kwargs, message):
    inputs = {"scale": 3.0, "blur_sigma": INF, "layers": "", **kwargs}
    with pytest.raises(NodeInputError, match=rf"SEG \(Guidance Zoo\): {message}"):
        SEG.execute(tm.make_model("sd15"), **inputs)


def test_finite_blur_on_a_dit_is_a_clear_error():
    with pytest.raises(NodeInputError, match=r"SEG \(Guidance Zoo\): a finite blur_sigma needs the token grid"):
        SEG.execute(tm.make_model("flux"), 3.0, 4.0, "")
