"""TPG: the token shuffle against its formula on fixed tensors, and the node on real ComfyUI with tiny models of
every family (image tokens only, seeded, NFEs, batch, 5-D video, fp16, stacking, bad input)."""
import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
import perturbation_checks as checks
from support_matrix import cases

from guidance_zoo.attention_patches.families.flux import FLUX
from guidance_zoo.attention_patches.families.unet import UNET
from guidance_zoo.attention_patches.layers import Layer, LayerMap
from guidance_zoo.core.tpg import shuffle_tokens, token_permutation
from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.tpg import TPG, tpg_default


def tpg(model, scale=3.0, layers="", seed=0):
    return TPG.execute(model, scale, layers, seed).result[0]


@pytest.mark.parametrize("image", [slice(0, 10), slice(3, 10), slice(0, 6)])
def test_shuffle_permutes_only_the_image_tokens_with_one_permutation_for_all_rows(image):
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(3, 10, 4, generator=g)
    n = len(range(10)[image])
    perm = token_permutation(n, torch.Generator().manual_seed(7))
    assert sorted(perm.tolist()) == list(range(n)) and perm.tolist() != list(range(n))
    out = shuffle_tokens(hidden, image, perm)
    positions = list(range(10))[image]
    for b in range(3):
        for j, p in enumerate(positions):
            torch.testing.assert_close(out[b, p], hidden[b, positions[perm[j]]])
        others = [i for i in range(10) if i not in positions]
        torch.testing.assert_close(out[b, others], hidden[b, others])
    torch.testing.assert_close(out.norm(dim=(1, 2)), hidden.norm(dim=(1, 2)))


def test_permutations_come_from_the_seed_and_leave_the_global_rng_alone():
    state = torch.get_rng_state()
    a = token_permutation(50, torch.Generator().manual_seed(3))
    b = token_permutation(50, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and torch.equal(state, torch.get_rng_state())


@pytest.mark.parametrize("family", cases("TPG", tm.supporting("TPG")))
def test_tpg_changes_the_output_on_every_family(family):
    checks.changes_output(tpg, family)


def test_only_image_tokens_are_shuffled_in_a_flux_single_block():
    """The perturbed row enters the block with the cond row's text tokens in place and its image tokens permuted."""
    model = tm.make_model("flux")
    seen = []

    def record(args, extra):
        seen.append((args["img"].clone(), list(args["transformer_options"]["cond_or_uncond"])))
        return extra["original_block"](args)
    foreign = model.clone()
    foreign.set_model_patch_replace(record, "dit", "single_block", 0)
    tm.ksample(tpg(foreign, 3.0, "single 0"), "flux", cfg=4.0, steps=1)
    hidden, chunks = seen[0]
    cond, perturbed = hidden[chunks.index(0)], hidden[chunks.index(2)]
    text = hidden.shape[1] - 16
    torch.testing.assert_close(perturbed[:text], cond[:text])
    assert not torch.equal(perturbed[text:], cond[text:])
    torch.testing.assert_close(perturbed[text:].sort(dim=0).values, cond[text:].sort(dim=0).values)


def test_only_image_tokens_are_shuffled_in_a_lumina2_block():
    """Lumina2's blocks carry text then image tokens; the first norm inside block 0 sees the shuffled input."""
    model = tm.make_model("lumina2")
    seen = []
    norm = model.model.diffusion_model.layers[0].attention_norm1
    handle = norm.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()))
    try:
        tm.ksample(tpg(model, 3.0, "block 0"), "lumina2", cfg=4.0, steps=1)
    finally:
        handle.remove()
    hidden, text = seen[0], seen[0].shape[1] - 16
    # of the three rows (cond, uncond, extra cond), exactly one pair shares its text tokens: cond and extra cond
    pairs = [(i, j) for i in range(3) for j in range(i + 1, 3) if torch.equal(hidden[i, :text], hidden[j, :text])]
    assert len(pairs) == 1
    cond, perturbed = hidden[pairs[0][0]], hidden[pairs[0][1]]
    assert not torch.equal(perturbed[text:], cond[text:])
    torch.testing.assert_close(perturbed[text:].sort(dim=0).values, cond[text:].sort(dim=0).values)


def test_a_new_permutation_per_block_call_and_step_and_per_seed():
    model = tm.make_model("sd3")
    a, b = tm.ksample(tpg(model, seed=1), "sd3"), tm.ksample(tpg(model, seed=1), "sd3")
    assert torch.equal(a, b)
    assert checks.max_diff(tm.ksample(tpg(model, seed=2), "sd3"), a) > 1e-4
    tm.ksample(model, "sd3")
    after_plain = torch.get_rng_state()
    tm.ksample(tpg(model, seed=1), "sd3")
    assert torch.equal(after_plain, torch.get_rng_state())


def test_tpg_keeps_a_foreign_block_replace_on_its_block():
    checks.keeps_foreign_patches(lambda m: tpg(m, 3.0, "double 0"), "flux")


def test_tpg_keeps_a_foreign_attn1_replace_inside_a_shuffled_unet_block():
    checks.keeps_a_foreign_attn1_patch(lambda m: tpg(m, 3.0, "middle"))


def test_tpg_defaults_are_the_official_sdxl_blocks():
    sdxl = LayerMap(UNET, "SDXL", [Layer("input", 4, t) for t in range(2)] + [Layer("input", 5, t) for t in range(2)]
                    + [Layer("input", i, t) for i in (7, 8) for t in range(10)]
                    + [Layer("middle", 0, t) for t in range(10)],
                    "middle")
    assert tpg_default(sdxl) == "input 7:2-9, input 8"
    assert len(sdxl.parse(tpg_default(sdxl))) == 18
    sd15 = LayerMap(UNET, "SD15", [Layer("input", i) for i in (1, 2, 4, 5, 7, 8)] + [Layer("middle", 0)], "middle")
    assert tpg_default(sd15) == "input 7-8"
    assert tpg_default(LayerMap(UNET, "SD15", [Layer("input", 1), Layer("input", 3), Layer("middle", 0)],
                                "middle")) == "input 1, input 3"
    assert tpg_default(LayerMap(FLUX, "Flux", [Layer("double", 0), Layer("double", 1)], "double 1")) == "double 1"


@pytest.mark.parametrize("spec,message", [
    ("output 99", r"layer 'output 99' does not exist in this SDXL model"),
    ("single 0", r"unknown layer group 'single' for SDXL"),
])
def test_tpg_rejects_unknown_layers_naming_the_node(spec, message):
    with pytest.raises(NodeInputError, match=r"TPG \(Guidance Zoo\): " + message):
        tpg(tm.make_model("sdxl"), 3.0, spec)


@pytest.mark.parametrize("scale,seed", [(float("nan"), 0), (-1.0, 0), (3.0, -1), (3.0, 0.5)])
def test_tpg_rejects_bad_numbers(scale, seed):
    with pytest.raises(NodeInputError, match=r"TPG \(Guidance Zoo\): '(scale|seed)'"):
        tpg(tm.make_model("flux"), scale, "", seed)


def shuffled_sub_network(model, family: str, layer: str, seed: int):
    """A clone whose chosen block (test-side patch) sees its input tokens permuted as TPG documents for step 0:
    torch.randperm(tokens) from a CPU generator seeded with seed * 1_000_003 + step index (0)."""
    def permute(hidden):
        permutation = torch.randperm(hidden.shape[1], generator=torch.Generator().manual_seed(seed * 1_000_003))
        return hidden[:, permutation]
    clone = model.clone()
    if family in tm.UNETS:
        group, index = layer.split()
        owner = clone.model.diffusion_model.middle_block if group == "middle" else \
            clone.model.diffusion_model.input_blocks[int(index)]
        block = next(m for m in owner.modules() if type(m).__name__ == "BasicTransformerBlock")
        return clone, block.register_forward_pre_hook(lambda _m, args: (permute(args[0]),) + tuple(args[1:]))
    group, index = layer.split()
    clone.set_model_patch_replace(lambda args, extra: extra["original_block"]({**args, "img": permute(args["img"])}),
                                  "dit", f"{group}_block", int(index))
    return clone, None


@pytest.mark.parametrize("family,layer", [("sd15", "middle 0"), ("flux", "double 1")])
def test_one_step_equals_cfg_plus_scale_times_cond_minus_the_shuffled_pass(family, layer):
    """D_shuffled comes from a test-side patch applying the seeded permutation to the cond at cfg 1."""
    model = tm.make_model(family)
    d_cfg = tm.ksample(model, family, cfg=4.0, steps=1)
    d_c = tm.ksample(model, family, cfg=1.0, steps=1)
    shuffled, handle = shuffled_sub_network(model, family, layer, seed=7)
    try:
        d_shuffled = tm.ksample(shuffled, family, cfg=1.0, steps=1)
    finally:
        if handle is not None:
            handle.remove()
    assert checks.max_diff(d_shuffled, d_c) > 1e-3
    ours = tm.ksample(tpg(model, 2.5, layer, 7), family, cfg=4.0, steps=1)
    checks.assert_close(ours, d_cfg + 2.5 * (d_c - d_shuffled))
    assert checks.max_diff(ours, d_cfg) > 1e-3
