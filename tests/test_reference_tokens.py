"""Edit models' reference tokens (Flux Kontext, Flux2 and Qwen-Image-Edit with reference latents, whose tokens the model
appends after the generated image tokens): PAG, SEG, SLG and NAG act on the generated tokens only, the reference
tokens' rows at the perturbed layer are as the plain model computes them, the output still changes, and without
reference latents nothing changes."""
import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from tiny_models import assert_close, assert_differs
import comfy.patcher_extension

from guidance_zoo.attention_patches.attention_call import AttentionCall, perturb_with_references
from guidance_zoo.attention_patches.layers import Layer
from guidance_zoo.attention_patches.pag import pag_perturbation
from guidance_zoo.nodes.nag import NAG
from guidance_zoo.nodes.pag import PAG
from guidance_zoo.nodes.seg import SEG
from guidance_zoo.nodes.slg import SkipLayerGuidance

EDIT = tuple(f for f in ("flux_kontext", "flux2_edit", "qwen_image_edit") if f in tm.FAMILIES)
GENERATED = 16                  # every edit recipe's latent makes 16 image tokens, its reference latent 12
METHODS = {
    "PAG": lambda m, f, layer: PAG.execute(m, 3.0, layer).result[0],
    "SEG": lambda m, f, layer: SEG.execute(m, 3.0, 9999999.0, layer).result[0],
    "SLG": lambda m, f, layer: SkipLayerGuidance.execute(m, 3.0, layer, 0.0, 1.0, 0.0).result[0],
    "NAG": lambda m, f, layer: NAG.execute(m, tm.make_conds(f, seed=7, tokens=5)[0], 5.0, 2.5, 0.25, 0.0).result[0],
}


def first_layer(family: str) -> str:
    return "block 0" if family == "qwen_image_edit" else "double 0"


def blocks(model) -> list[torch.nn.Module]:
    dm = model.model.diffusion_model
    return list(dm.transformer_blocks if hasattr(dm, "transformer_blocks") else dm.double_blocks)


def attention_output(block: torch.nn.Module) -> torch.nn.Module:
    """The projection that takes the first block's image-stream attention output ([generated, reference] tokens)."""
    return block.attn.to_out[0] if hasattr(block, "attn") else block.img_attn.proj


class Recorder:
    """The first model call's row layout (cond_or_uncond), the first block's image-stream attention output and
    input, and the second block's image input (the first block's output as the model goes on with it)."""

    def __init__(self, model):
        self.model = model.clone()
        self.chunks, self.seen = None, {}
        self.model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "test_reference_tokens",
                                        self.apply_model)

    def apply_model(self, executor, x, *args, **kwargs):
        options = kwargs.get("transformer_options") or args[4]
        first, self.chunks = self.chunks is None, self.chunks or list(options["cond_or_uncond"])
        if not first:
            return executor(x, *args, **kwargs)
        first_block, second_block = blocks(self.model)[:2]
        handles = [attention_output(first_block).register_forward_pre_hook(self.keep("attention")),
                   first_block.register_forward_pre_hook(self.keep("input"), with_kwargs=True),
                   second_block.register_forward_pre_hook(self.keep("output"), with_kwargs=True)]
        try:
            return executor(x, *args, **kwargs)
        finally:
            for handle in handles:
                handle.remove()

    def keep(self, name: str):
        def hook(module, args, kwargs=None):
            image = args[0] if args else kwargs.get("img", kwargs.get("hidden_states"))
            self.seen.setdefault(name, image.detach().clone())
        return hook

    def row(self, name: str, chunk: int) -> torch.Tensor:
        """The recorded tensor's row of cond `chunk` (0: the positive, 2: the extra perturbed pass)."""
        assert chunk in self.chunks, f"the first model call has conds {self.chunks}, not {chunk}"
        return self.seen[name][self.chunks.index(chunk)]


@pytest.mark.parametrize("family", EDIT)
@pytest.mark.parametrize("method", ("PAG", "SEG"))
def test_attention_perturbations_leave_the_reference_rows_as_the_model_computes_them(family, method):
    model = tm.make_model(family)
    recorder = Recorder(METHODS[method](model, family, first_layer(family)))
    out = tm.ksample(recorder.model, family)
    perturbed, positive = recorder.row("attention", 2), recorder.row("attention", 0)
    assert perturbed.shape[0] == GENERATED + 12
    assert_close(perturbed[GENERATED:], positive[GENERATED:], 1e-5)
    assert_differs(perturbed[:GENERATED], positive[:GENERATED])
    assert_differs(out, tm.ksample(model, family))


@pytest.mark.parametrize("family", EDIT)
def test_a_skipped_block_keeps_its_input_but_the_reference_rows_get_its_output(family):
    model = tm.make_model(family)
    recorder = Recorder(METHODS["SLG"](model, family, first_layer(family)))
    out = tm.ksample(recorder.model, family)
    skipped, positive = recorder.row("output", 2), recorder.row("output", 0)
    assert_close(skipped[:GENERATED], recorder.row("input", 0)[:GENERATED], 1e-6)
    assert_close(skipped[GENERATED:], positive[GENERATED:], 1e-5)
    assert_differs(skipped[GENERATED:], recorder.row("input", 0)[GENERATED:])
    assert_differs(out, tm.ksample(model, family))


@pytest.mark.parametrize("family", EDIT)
def test_nag_guides_the_generated_rows_only(family):
    model = tm.make_model(family)
    plain, guided = Recorder(model), Recorder(METHODS["NAG"](model, family, ""))
    reference = tm.ksample(plain.model, family)
    out = tm.ksample(guided.model, family)
    ours, theirs = guided.row("attention", 0), plain.row("attention", 0)
    assert_close(ours[GENERATED:], theirs[GENERATED:], 1e-5)
    assert_differs(ours[:GENERATED], theirs[:GENERATED])
    assert_differs(out, reference)


def without_references(family: str):
    return tuple([[context, {k: v for k, v in extra.items() if k != "reference_latents"}]]
                 for [[context, extra]] in tm.make_conds(family))


@pytest.mark.parametrize("family", EDIT)
@pytest.mark.parametrize("method", list(METHODS))
def test_the_reference_handling_changes_nothing_without_reference_latents(family, method, monkeypatch):
    """The same sample with the adapter's reference_latents fact switched off (the hook as before this feature):
    bit-identical without reference latents, different with them."""
    model = tm.make_model(family)
    guided = METHODS[method](model, family, first_layer(family) if method != "NAG" else "")
    on = {refs: tm.ksample(guided, family, conds=None if refs else without_references(family)) for refs in (0, 1)}
    monkeypatch.setattr(tm.adapter(family), "reference_latents", False)
    assert torch.equal(tm.ksample(guided, family, conds=without_references(family)), on[0])
    assert_differs(tm.ksample(guided, family), on[1], 1e-5)


def test_image_first_and_text_first_layouts_give_the_same_rows():
    """[generated, reference, text] is [text, generated, reference] reordered: the same output rows (PAG)."""
    g = torch.Generator().manual_seed(0)
    text, generated, refs = 5, 6, 4
    q, k, v = (torch.randn(1, 2, text + generated + refs, 8, generator=g) for _ in range(3))

    def run(order: list[int], text_first: bool, refs_at: slice) -> torch.Tensor:
        qo, ko, vo = (t[:, :, order] for t in (q, k, v))
        call = AttentionCall(qo, ko, vo, Layer("double", 0), True, text, text_first, 8 ** -0.5, None)
        assert call.references(generated) == refs_at
        return perturb_with_references(pag_perturbation, call, refs_at, None, True,
                                       lambda: torch.nn.functional.scaled_dot_product_attention(qo, ko, vo))

    text_first = run(list(range(15)), True, slice(11, 15))
    image_first = run(list(range(5, 15)) + list(range(5)), False, slice(6, 10))
    assert_close(image_first, text_first[:, :, list(range(5, 15)) + list(range(5))], 1e-6)
    plain = torch.nn.functional.scaled_dot_product_attention(q, k, v)
    assert_close(text_first[:, :, 11:], plain[:, :, 11:], 1e-6)
    assert_differs(text_first[:, :, 5:11], plain[:, :, 5:11])
