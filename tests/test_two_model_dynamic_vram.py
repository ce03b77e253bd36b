"""Two-model guidance, PAG, NAG and a CFG rule under ComfyUI 0.33's dynamic VRAM loader (ModelPatcherDynamic, the
default on NVIDIA GPUs), built on the CPU (tests/dynamic_vram.py): each run equals the same run on the classic
ModelPatcher, through comfy.sample.sample (KSampler) and CFGGuider (SamplerCustomAdvanced)."""
import pytest

import dynamic_vram as dv

if not dv.AVAILABLE:
    pytest.skip(dv.SKIP_REASON, allow_module_level=True)

import tiny_models as tm  # noqa: E402
from dynamic_vram import dynamic_vram  # noqa: E402,F401  (the fixture)
from test_two_model import CFG, GUIDERS, METHODS, NAMES, patch, run, with_lora  # noqa: E402
from tiny_models import assert_close  # noqa: E402

from guidance_zoo.nodes.autoguidance import Autoguidance  # noqa: E402
from guidance_zoo.nodes.cfg_zero_star import CFGZeroStar  # noqa: E402
from guidance_zoo.nodes.common import NodeInputError  # noqa: E402
from guidance_zoo.nodes.nag import NAG  # noqa: E402
from guidance_zoo.nodes.pag import PAG  # noqa: E402
from guidance_zoo.nodes.unconditional_prior import UnconditionalPrior  # noqa: E402

pytestmark = pytest.mark.usefixtures("dynamic_vram")
FAMILY = "sd3"


def pair(kind: str, dynamic: bool) -> tuple:
    """(main, second): separate checkpoints ("seeds") or main = base + LoRA and second = base ("lora")."""
    if kind == "seeds":
        return dv.load(FAMILY, disable_dynamic=not dynamic), dv.load(FAMILY, seed=1, disable_dynamic=not dynamic)
    base = dv.load(FAMILY, disable_dynamic=not dynamic)
    return with_lora(base), base


def runs_a_weight_hook(method: str, kind: str) -> bool:
    """A weight variant, or personalization's interpolated weak model (a weight hook even across checkpoints)."""
    return kind == "lora" or method == "personalization"


@pytest.mark.parametrize("kind", ("seeds", "lora"))
@pytest.mark.parametrize("method", METHODS)
def test_two_model_node_equals_the_classic_loader(method, kind):
    main, second = pair(kind, dynamic=True)
    assert dv.is_dynamic(main) and dv.is_dynamic(second)
    classic = tm.ksample(patch(method, *pair(kind, dynamic=False)), FAMILY, cfg=CFG)
    ours = patch(method, main, second)
    assert_close(tm.ksample(ours, FAMILY, cfg=CFG), classic, rel=1e-5)
    assert dv.is_dynamic(ours) != runs_a_weight_hook(method, kind)  # ComfyUI's classic delegate only for a hook
    guider = GUIDERS[method](main, second, *tm.make_conds(FAMILY)).result[0]
    assert_close(run(guider, main, FAMILY), classic, rel=1e-5)


def test_the_classic_copy_is_loaded_once_per_input_model():
    base = dv.load(FAMILY)
    main = with_lora(base)
    before = dv.Loads.count
    for scale in (2.0, 1.5):  # the node re-run with another setting, on the same (cached) input MODEL
        tm.ksample(Autoguidance.execute(main, base, scale).result[0], FAMILY, cfg=CFG)
    assert dv.Loads.count == before + 1


@pytest.mark.parametrize("method", METHODS)
def test_weight_variant_without_a_loader_factory_is_an_error_naming_the_node_and_the_fix(method):
    base = dv.load(FAMILY)
    base.cached_patcher_init = None  # a custom loader that registers no factory for ComfyUI's classic copy
    with pytest.raises(NodeInputError, match=rf"{NAMES[method]} \(Guidance Zoo\).*dynamic VRAM.*core loader.*"
                                             r"--disable-dynamic-vram"):
        patch(method, with_lora(base), base)


def nag(model):
    return NAG.execute(model, tm.make_conds(FAMILY, seed=7, tokens=5)[0], 5.0, 2.5, 0.25, 0.0).result[0]


OTHERS = {"pag": lambda m: PAG.execute(m, 3.0, "").result[0], "nag": nag,
          "cfg_zero_star": lambda m: CFGZeroStar.execute(m, 1, "official").result[0],
          "all_on_unconditional_prior": lambda m: CFGZeroStar.execute(nag(PAG.execute(
              UnconditionalPrior.execute(with_lora(m), m).result[0], 3.0, "").result[0]), 1, "official").result[0]}
SAMPLERS = {"ksampler": tm.ksample, "cfg_guider": tm.guider_sample}


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("node", OTHERS)
def test_pag_nag_and_a_cfg_rule_equal_the_classic_loader(node, sampler):
    sample = SAMPLERS[sampler]
    ours = OTHERS[node](dv.load(FAMILY))
    assert_close(sample(ours, FAMILY, cfg=CFG), sample(OTHERS[node](dv.load(FAMILY, disable_dynamic=True)), FAMILY,
                                                        cfg=CFG), rel=1e-5)
    assert dv.is_dynamic(ours) == (node != "all_on_unconditional_prior")
