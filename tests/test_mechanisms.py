"""The mechanism behind each 'yes' of the attention perturbations, checked on every family on the layer's own inputs:
the hook hands the perturbation the chosen layer's real self/joint attention call (query and key over the same
tokens, the text tokens where the family's layout puts them), and what the perturbation returns is the paper's
rule computed independently here in float64 from that call's q, k, v (PAG: identity map for the image tokens, which
keep seeing the text on joint attention; SEG at infinite blur: every image query replaced by their mean)."""
import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)

from guidance_zoo.attention_patches.families import layer_map
from guidance_zoo.attention_patches.hook import PerturbedPass
from guidance_zoo.attention_patches.pag import pag_perturbation
from guidance_zoo.attention_patches.seg import seg_perturbation
from guidance_zoo.core.attention import additive_mask
from guidance_zoo.guiders.extra_pass import ExtraCondPass
from guidance_zoo.guiders.perturbed_guidance import PerturbedGuidancePostCFG


def recorded_run(family: str, perturbation) -> list:
    """(call, output) of every perturbed call of a 2-step cfg-4 run with the family's default layers."""
    model = tm.make_model(family)
    lmap = layer_map(model)
    seen = []

    def recording(call):
        out = perturbation(call)
        seen.append((call, out))
        return out
    patched = model.clone()
    extra_pass = ExtraCondPass(PerturbedPass(lmap, lmap.parse(lmap.default), recording, "test"))
    extra_pass.install(patched)
    patched.set_model_sampler_post_cfg_function(PerturbedGuidancePostCFG(extra_pass, 3.0))
    out = tm.ksample(patched, family, steps=2)
    assert torch.isfinite(out).all()
    tm.assert_differs(out, tm.ksample(model, family, steps=2))
    assert seen, f"the hook reached no attention call of {family}'s {lmap.default}"
    return seen


def scores(call) -> torch.Tensor:
    """The call's attention logits in float64, its mask added."""
    q, k = call.q.double(), call.k.double()
    s = q @ k.transpose(-1, -2) * (q.shape[-1] ** -0.5 if call.scale is None else call.scale)
    mask = additive_mask(call.mask, torch.float64)
    return s if mask is None else s + mask


def text_slice(call) -> slice:
    n = call.q.shape[2]
    return slice(0, call.text_len) if call.text_first else slice(n - call.text_len, n)


def check_layout(call, family: str) -> None:
    """A self/joint attention call: keys over the query's tokens; on joint families the text is there too."""
    assert call.k.shape[2] == call.q.shape[2], f"{family}: a cross-attention call was handed over as self-attention"
    image = range(call.q.shape[2])[call.image]
    assert len(image) > 0
    if tm.adapter(family).joint:
        assert 0 < call.text_len < call.q.shape[2]
        assert not set(range(call.q.shape[2])[text_slice(call)]) & set(image)


def close(a: torch.Tensor, b: torch.Tensor) -> None:
    torch.testing.assert_close(a.double(), b, rtol=1e-4, atol=1e-4 * float(b.abs().max()))


@pytest.mark.parametrize("family", tm.supporting("PAG"))
def test_pag_returns_each_image_tokens_own_value(family):
    for call, out in recorded_run(family, pag_perturbation):
        check_layout(call, family)
        v, image = call.v.double(), call.image
        if not (call.joint and call.text_len):
            close(out[:, :, image], v[:, :, image])
            continue
        s = scores(call)
        allowed = torch.zeros(s.shape[-2:], dtype=torch.bool)
        allowed[:, text_slice(call)] = True
        allowed |= torch.eye(s.shape[-1], dtype=torch.bool)
        expected = torch.softmax(s.masked_fill(~allowed, float("-inf")), -1) @ v
        close(out[:, :, image], expected[:, :, image])
        close(out[:, :, text_slice(call)], (torch.softmax(s, -1) @ v)[:, :, text_slice(call)])


@pytest.mark.parametrize("family", tm.supporting("SEG"))
def test_seg_at_infinite_blur_attends_with_the_mean_image_query(family):
    for call, out in recorded_run(family, seg_perturbation(9999.0)):
        check_layout(call, family)
        q, image = call.q.double().clone(), call.image
        q[:, :, image] = q[:, :, image].mean(2, keepdim=True)
        blurred = type(call)(**{**vars(call), "q": q})
        expected = torch.softmax(scores(blurred), -1) @ call.v.double()
        close(out[:, :, image], expected[:, :, image])
