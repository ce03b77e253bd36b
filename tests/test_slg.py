"""Skip-Layer Guidance through the block hook: parity with ComfyUI core's SkipLayerGuidanceDiT/SD3 where core applies,
effect on UNets and Lumina2 where core does nothing, NFEs, batch, 5-D video, fp16, stacking and bad input."""
import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
import perturbation_checks as checks
from support_matrix import cases
from comfy_extras.nodes_sd3 import SkipLayerGuidanceSD3
from comfy_extras.nodes_slg import SkipLayerGuidanceDiT

from guidance_zoo.attention_patches.families import BlockReach, layer_map
from guidance_zoo.core.slg import rescale_to_cond_std
from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.slg import SkipLayerGuidance

SLG = "Skip-Layer Guidance"
WORKS = tm.supporting(SLG)
# core SkipLayerGuidanceDiT skips "dit" double_block/single_block replace keys; families reached otherwise it misses,
# and a tiny family may say (extra core_slg=False) that core's skip does not fit its block outputs
DIT_REPLACE = tuple(f for f in WORKS if tm.adapter(f).block_reach is BlockReach.DIT_REPLACE)
# a family we reach by forward hooks whose "dit" block replace keys core's skip still works on (it never runs the
# block: Kandinsky 5, whose block replace cannot run its block) says extra core_slg=True
DIT_REPLACE += tuple(f for f in WORKS if f not in DIT_REPLACE and f in tm.SPECS and tm.SPECS[f].extra.get("core_slg"))
CORE_FAMILIES = tuple(f for f in DIT_REPLACE if f not in tm.SPECS or tm.SPECS[f].extra.get("core_slg", True))
CORE_MISSES = tuple(f for f in WORKS if f not in DIT_REPLACE)
OTHERS = tuple(f for f in DIT_REPLACE if f not in CORE_FAMILIES)
# our layer names and core's (double_layers, single_layers) for the same blocks
NAMES = {"sd3": ("block 1", "1", ""), "qwen_image": ("block 0", "0", ""), "wan21": ("block 1", "1", ""),
         "flux": ("double 0, single 1", "0", "1"), "flux2": ("single 0", "", "0"), "chroma": ("double 1", "1", "")}


def names(family: str, model) -> tuple[str, str, str]:
    """Our name of the family's default layer, and core's (double_layers, single_layers) for that block."""
    if family in NAMES:
        return NAMES[family]
    lmap = layer_map(model)
    layer = lmap.parse(lmap.default)[0]
    kind, index = lmap.patch_key(layer)
    return layer.name, str(index) if kind == "double_block" else "", str(index) if kind == "single_block" else ""


def slg(model, scale=3.0, layers="", start=0.01, end=0.15, rescale=0.0):
    return SkipLayerGuidance.execute(model, scale, layers, start, end, rescale).result[0]


def everywhere(model, scale=3.0, layers=""):
    return slg(model, scale, layers, 0.0, 1.0)


@pytest.mark.parametrize("family", cases("SLG", CORE_FAMILIES))
@pytest.mark.parametrize("window,rescale,cfg", [((0.0, 1.0), 0.0, 4.0), ((0.01, 0.15), 0.0, 4.0),
                                                ((0.0, 0.6), 0.7, 4.0), ((0.0, 1.0), 0.0, 1.0)])
def test_slg_equals_core_skip_layer_guidance_on_the_dits_core_supports(family, window, rescale, cfg):
    model = tm.make_model(family)
    ours_layers, double, single = names(family, model)
    steps = 8
    core = tm.ksample(SkipLayerGuidanceDiT.execute(model, 3.0, *window, double, single, rescale).result[0], family,
                      cfg=cfg, steps=steps)
    ours = tm.ksample(slg(model, 3.0, ours_layers, *window, rescale), family, cfg=cfg, steps=steps)
    assert torch.isfinite(ours).all()
    assert checks.max_diff(ours, tm.ksample(model, family, cfg=cfg, steps=steps)) > 1e-3
    checks.assert_close(ours, core)


def test_slg_equals_core_skip_layer_guidance_sd3_with_its_default_layers():
    """Core's SD3 node skips layers 7, 8, 9; so does ours by default on a model that deep."""
    config = dict(tm.FAMILIES["sd3"][1], depth=10)   # hidden width is 64 * depth
    config["context_embedder_config"] = {"target": "torch.nn.Linear", "params": {"in_features": tm.CTX,
                                                                                  "out_features": 640}}
    cls = tm.FAMILIES["sd3"][0](config)
    cls.set_inference_dtype(torch.float32, None)
    base = cls.get_model({}, "", device=tm.CPU)
    tm.init_random_(base.diffusion_model, 0)
    model = tm.comfy.model_patcher.ModelPatcher(base, load_device=tm.CPU, offload_device=tm.CPU)
    core = tm.ksample(SkipLayerGuidanceSD3.execute(model, "7, 8, 9", 3.0, 0.0, 1.0).result[0], "sd3")
    assert checks.max_diff(core, tm.ksample(model, "sd3")) > 1e-3
    checks.assert_close(tm.ksample(everywhere(model), "sd3"), core)


@pytest.mark.parametrize("family", cases("SLG", OTHERS))
def test_slg_changes_the_output_where_core_slg_does_not_fit(family):
    checks.changes_output(everywhere, family)


@pytest.mark.parametrize("family", cases("SLG", CORE_MISSES))
def test_slg_works_on_unets_and_lumina2_where_core_slg_does_nothing(family):
    model = tm.make_model(family)
    core = SkipLayerGuidanceDiT.execute(model, 3.0, 0.0, 1.0, "0, 1", "0, 1").result[0]
    checks.assert_close(tm.ksample(core, family), tm.ksample(model, family))
    checks.changes_output(everywhere, family)


def test_slg_outside_its_range_runs_no_extra_pass():
    counted, counter = tm.counted(slg(tm.make_model("sd3"), 3.0, "", 0.5, 1.0))
    tm.ksample(counted, "sd3", cfg=4.0, steps=4)
    assert counter.calls == 4 and 2 * 4 < counter.samples < 3 * 4


@pytest.mark.parametrize("family", ("flux", "sd3", "wan21"))
def test_slg_keeps_a_foreign_block_replace_on_the_skipped_block(family):
    checks.keeps_foreign_patches(lambda m: everywhere(m, 3.0, f"{layer_map(m).groups()[0]} 0"), family)


def test_slg_keeps_a_foreign_attn1_replace_inside_a_skipped_unet_block():
    checks.keeps_a_foreign_attn1_patch(everywhere)


def test_slg_hooks_are_removed_after_the_call():
    model = everywhere(tm.make_model("lumina2"))
    tm.ksample(model, "lumina2")
    modules = list(model.model.diffusion_model.modules())
    assert not any(m._forward_hooks or m._forward_pre_hooks for m in modules)


def test_rescale_is_per_sample():
    g = torch.Generator().manual_seed(0)
    guided, cond = torch.randn(2, 4, 3, 5, generator=g), torch.randn(2, 4, 3, 5, generator=g) * 3
    out = rescale_to_cond_std(guided, cond, 0.7)
    for i in range(2):
        expected = guided[i] * (0.7 * cond[i].std() / guided[i].std() + 0.3)
        torch.testing.assert_close(out[i], expected)


@pytest.mark.parametrize("kwargs,message", [
    ({"layers": "block 99"}, r"layer 'block 99' does not exist in this SD3 model; it has: block 0-1"),
    ({"layers": "double 1"}, r"unknown layer group 'double' for SD3"),
    ({"start": 0.5, "end": 0.2}, r"start_percent \(0.5\) must not be after end_percent \(0.2\)"),
    ({"scale": float("nan")}, r"'scale' must be a finite number"),
])
def test_slg_rejects_bad_input_naming_the_node(kwargs, message):
    with pytest.raises(NodeInputError, match=r"Skip-Layer Guidance \(Guidance Zoo\): " + message):
        slg(tm.make_model("sd3"), **kwargs)
