"""LTX-2 (LTXAV) with both streams: a video + audio latent (a NestedTensor, as LTXVConcatAVLatent makes it). The
methods act on the video stream only: every attention call whose queries are the audio tokens (the audio
self-attention, its text cross-attention, its cross-attention to the video) returns exactly what plain attention
gives on that call's own inputs, while the video output changes; PAG's and SEG's perturbed video self-attention is
caught by the same replay, so the replay would see a perturbed audio call."""
import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
import comfy.nested_tensor
import comfy.sample
from tiny_families.lightricks import AUDIO_LATENT

from guidance_zoo.nodes.nag import NAG
from guidance_zoo.nodes.pag import PAG
from guidance_zoo.nodes.pladis import PLADIS
from guidance_zoo.nodes.seg import SEG
from guidance_zoo.nodes.slg import SkipLayerGuidance
from guidance_zoo.nodes.tpg import TPG

pytestmark = pytest.mark.skipif("ltx2" not in tm.FAMILIES, reason="this ComfyUI has no LTXAV")

AUDIO_CALLS = ("audio_attn1", "audio_attn2", "video_to_audio_attn")
# method: (the node at its defaults, whether it changes the chosen block's video self-attention itself)
METHODS = {
    "PAG": (lambda m: PAG.execute(m, 3.0, "").result[0], True),
    "SEG": (lambda m: SEG.execute(m, 3.0, 10000.0, "").result[0], True),
    "TPG": (lambda m: TPG.execute(m, 3.0, "", 0).result[0], False),
    "SLG": (lambda m: SkipLayerGuidance.execute(m, 3.0, "", 0.0, 1.0, 0.0).result[0], False),
    "PLADIS": (lambda m: PLADIS.execute(m, 2.0, 1.5, "").result[0], False),
    "NAG": (lambda m: NAG.execute(m, tm.make_conds("ltx2", seed=7, tokens=5)[0], 5.0, 2.5, 0.25, 0.0).result[0],
            False),
}


def av_sample(model, steps: int = 2) -> list[torch.Tensor]:
    """[video, audio] of a cfg-4 euler run on a video + audio latent."""
    latent = comfy.nested_tensor.NestedTensor([torch.zeros((1,) + tm.FAMILIES["ltx2"][2]),
                                               torch.zeros((1,) + AUDIO_LATENT)])
    positive, negative = tm.make_conds("ltx2")
    out = comfy.sample.sample(model, comfy.sample.prepare_noise(latent, 0), steps, 4.0, "euler", "normal", positive,
                              negative, latent, disable_pbar=True, seed=0)
    return out.unbind()


def recording(model, names: tuple[str, ...]) -> tuple[list, list]:
    """Forward hooks recording (module, args, kwargs, output) of the named attention modules of every block."""
    calls, handles = [], []
    for block in model.model.diffusion_model.transformer_blocks:
        for name in names:
            def hook(module, args, kwargs, output, name=name):
                calls.append((name, module, tuple(a.clone() for a in args), kwargs, output.clone()))
            handles.append(getattr(block, name).register_forward_hook(hook, with_kwargs=True))
    return calls, handles


def replayed(module, args: tuple, kwargs: dict) -> torch.Tensor:
    """The module's plain output on a recorded call's inputs: no patch of any sampler run reaches it."""
    with torch.no_grad():
        return module(*args, **{**kwargs, "transformer_options": {}})


@pytest.mark.parametrize("method", METHODS)
def test_the_audio_streams_own_attention_is_untouched_and_the_video_changes(method):
    model = tm.make_model("ltx2")
    plain_video, plain_audio = av_sample(model)
    assert plain_audio.shape == (1,) + AUDIO_LATENT
    apply, perturbs_self_attention = METHODS[method]
    calls, handles = recording(model, AUDIO_CALLS + ("attn1",))
    try:
        video, audio = av_sample(apply(model))
    finally:
        for handle in handles:
            handle.remove()
    assert torch.isfinite(video).all() and torch.isfinite(audio).all()
    tm.assert_differs(video, plain_video)
    audio_calls = [c for c in calls if c[0] in AUDIO_CALLS]
    assert {c[0] for c in audio_calls} == set(AUDIO_CALLS)
    for name, module, args, kwargs, output in audio_calls:
        torch.testing.assert_close(output, replayed(module, args, kwargs), rtol=1e-5, atol=1e-6, msg=name)
    video_self = [c for c in calls if c[0] == "attn1"]
    changed = [not torch.allclose(out, replayed(m, a, k), rtol=1e-5, atol=1e-6) for _, m, a, k, out in video_self]
    assert any(changed) == perturbs_self_attention
