"""Two-model guidance (Autoguidance, unconditional priors, domain guidance, RLG, personalization guidance) on real
ComfyUI with tiny models: pairs of separate models (different seeds) and LoRA variants of one model (weight hooks),
each checked against its formula computed here on separately built models."""
import pytest
import torch

import tiny_models as tm
from tiny_models import assert_close, assert_differs
import comfy.model_management
import comfy.patcher_extension
import comfy.samplers
import comfy.weight_adapter
from foreign_patches import with_foreign_patches
from support_matrix import cases

from guidance_zoo.core.autoguidance import autoguidance
from guidance_zoo.core.rlg import rlg_combine
from guidance_zoo.nodes.apg import APG
from guidance_zoo.nodes.autoguidance import Autoguidance, AutoguidanceGuider
from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.domain_guidance import DomainGuidance, DomainGuidanceGuider
from guidance_zoo.nodes.pag import PAG
from guidance_zoo.nodes.personalization import PersonalizationGuidance, PersonalizationGuidanceGuider
from guidance_zoo.nodes.rlg import RLG, RLGGuider
from guidance_zoo.nodes.unconditional_prior import UnconditionalPrior, UnconditionalPriorGuider

FAMILIES = ("sd15", "sd3", "wan21")
CFG = 4.0
STEPS = 3


def lora_patches(model, seed: int = 5, rank: int = 2) -> dict:
    """A LoRA (ComfyUI LoRAAdapter, up @ down) on the first few 2-D weights of the diffusion model."""
    g = torch.Generator().manual_seed(seed)
    sd = model.model_state_dict()
    keys = [k for k in sorted(sd) if k.startswith("diffusion_model.") and k.endswith(".weight") and sd[k].ndim == 2]
    patches = {}
    for key in keys[:8]:
        rows, cols = sd[key].shape
        up, down = 0.3 * torch.randn(rows, rank, generator=g), 0.3 * torch.randn(rank, cols, generator=g)
        patches[key] = comfy.weight_adapter.LoRAAdapter(set(), (up, down, float(rank), None, None, None))
    return patches


def with_lora(model, strength: float = 1.0, seed: int = 5):
    clone = model.clone()
    clone.add_patches(lora_patches(model, seed), strength)
    return clone


def pair(kind: str, family: str, dtype=torch.float32):
    """(main, second, main_reference, second_reference): the pair under test and the same two weight sets built as
    separate models for the reference."""
    if kind == "seeds":
        main, second = tm.make_model(family, dtype=dtype), tm.make_model(family, seed=1, dtype=dtype)
        return main, second, main, second
    # a LoRA variant: main = base + LoRA, second = base; in the reference each has its own weights
    base = tm.make_model(family, dtype=dtype)
    return with_lora(base), base, with_lora(tm.make_model(family, dtype=dtype)), tm.make_model(family, dtype=dtype)


class Reference(comfy.samplers.CFGGuider):
    """The formula on each model's own predictions, every model run separately (no code of the pack)."""

    def __init__(self, main, others: dict, rule):
        super().__init__(main)
        self.others, self.rule = others, rule

    def predict_noise(self, x, timestep, model_options=None, seed=None):
        if model_options is None:
            model_options = {}
        def run(patcher, which):
            if patcher is self.model_patcher:
                model, options = self.inner_model, model_options
            else:
                comfy.model_management.load_models_gpu([patcher])
                patcher.pre_run()
                model, options = patcher.model, {"transformer_options": {}}
            return comfy.samplers.calc_cond_batch(model, [self.conds[which]], x, timestep, options)[0]
        return self.rule(lambda name, which: run(self.others.get(name, self.model_patcher), which), self.cfg)


def reference(main, others, rule, family, cfg=CFG, seeds=(0,)):
    guider = Reference(main, others, rule)
    guider.set_conds(*tm.make_conds(family))
    guider.set_cfg(cfg)
    return run(guider, main, family, seeds)


def run(guider, model, family, seeds=(0,), steps=STEPS):
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "normal", steps)
    return guider.sample(tm.noise_for(family, list(seeds)), tm.latent(family, len(seeds)),
                         comfy.samplers.sampler_object("euler"), sigmas, disable_pbar=True, seed=seeds[0])


def cfg_rule(p, cfg):
    return p("main", "negative") + cfg * (p("main", "positive") - p("main", "negative"))


# ------------------------------------------------------------------------------------------------ the formulas

def autoguidance_rule(scale):
    def rule(p, cfg):
        cond = p("main", "positive")
        guided = cond if cfg == 1 else cfg_rule(p, cfg)
        return guided + (scale - 1) * (cond - p("second", "positive"))
    return rule


def uncond_rule(p, cfg):
    uncond = p("second", "negative")
    return uncond + cfg * (p("main", "positive") - uncond)


def rlg_rule(weight):
    def rule(p, cfg):
        base = p("second", "negative") + cfg * (p("second", "positive") - p("second", "negative"))
        return base + weight * (cfg_rule(p, cfg) - base)
    return rule


def patch(method, model, second):
    return {"autoguidance": lambda: Autoguidance.execute(model, second, 2.0),
            "unconditional_prior": lambda: UnconditionalPrior.execute(model, second),
            "domain_guidance": lambda: DomainGuidance.execute(model, second),
            "rlg": lambda: RLG.execute(model, second, 1.6, 0),
            "personalization": lambda: PersonalizationGuidance.execute(model, second, 0.0)}[method]().result[0]


RULES = {"autoguidance": autoguidance_rule(2.0), "unconditional_prior": uncond_rule, "domain_guidance": uncond_rule,
         "rlg": rlg_rule(1.6), "personalization": uncond_rule}  # personalization at ratio 0: weak model = pretrained
METHODS = tuple(RULES)


@pytest.mark.parametrize("kind", ("seeds", "lora"))
@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("method", METHODS)
def test_equals_its_formula_on_separately_built_models(method, family, kind):
    main, second, main_ref, second_ref = pair(kind, family)
    ours = tm.ksample(patch(method, main, second), family, steps=STEPS, cfg=CFG)
    assert_close(ours, reference(main_ref, {"second": second_ref}, RULES[method], family))
    assert_differs(ours, tm.ksample(main, family, steps=STEPS, cfg=CFG))


@pytest.mark.parametrize("method", METHODS)
def test_reduces_to_plain_cfg_when_both_models_are_the_same(method):
    main = tm.make_model("sd15")
    for second in (main, main.clone(), tm.make_model("sd15")):  # same patcher, clone, same weights loaded twice
        assert_close(tm.ksample(patch(method, main, second), "sd15", cfg=CFG), tm.ksample(main, "sd15", cfg=CFG),
                     rel=1e-5)


def test_neutral_settings_reduce_to_one_model():
    base = tm.make_model("sd3")
    main = with_lora(base)
    plain = tm.ksample(main, "sd3", cfg=CFG)
    assert_close(tm.ksample(Autoguidance.execute(main, base, 1.0).result[0], "sd3", cfg=CFG), plain, rel=1e-5)
    assert_close(tm.ksample(RLG.execute(main, base, 1.0, 0).result[0], "sd3", cfg=CFG), plain, rel=1e-5)
    assert_close(tm.ksample(RLG.execute(main, base, 0.0, 0).result[0], "sd3", cfg=CFG),
                 tm.ksample(base, "sd3", cfg=CFG), rel=1e-4)
    assert_close(tm.ksample(RLG.execute(main, base, 1.6, STEPS).result[0], "sd3", cfg=CFG), plain, rel=1e-5)
    assert_close(tm.ksample(PersonalizationGuidance.execute(main, base, 1.0).result[0], "sd3", cfg=CFG), plain,
                 rel=1e-5)


@pytest.mark.parametrize("kind", ("seeds", "lora"))
@pytest.mark.parametrize("family", ("sd15", "wan21"))
def test_personalization_weak_model_is_the_weight_interpolation(family, kind):
    ratio = 0.3
    main, pretrained, _, _ = pair(kind, family)
    weak = tm.make_model(family)
    if kind == "lora":
        weak.add_patches(lora_patches(weak), ratio)  # theta_pre + ratio * LoRA
    else:
        ft, pre = main.model.state_dict(), pretrained.model.state_dict()
        weak.model.load_state_dict({k: ratio * ft[k] + (1 - ratio) * pre[k] if ft[k].is_floating_point() else ft[k]
                                    for k in ft})
    main_ref = with_lora(tm.make_model(family)) if kind == "lora" else main
    ours = tm.ksample(PersonalizationGuidance.execute(main, pretrained, ratio).result[0], family, cfg=CFG)
    assert_close(ours, reference(main_ref, {"second": weak}, uncond_rule, family))


def test_rlg_zero_init_steps_use_the_tuned_model_alone():
    main, base = tm.make_model("sd15"), tm.make_model("sd15", seed=1)

    def rule(p, cfg):
        return cfg_rule(p, cfg) if rule.step < 1 else rlg_rule(1.6)(p, cfg)
    rule.step = 0

    def count_steps(p, cfg):
        out = rule(p, cfg)
        rule.step += 1
        return out
    ours = tm.ksample(RLG.execute(main, base, 1.6, 1).result[0], "sd15", cfg=CFG)
    assert_close(ours, reference(main, {"second": base}, count_steps, "sd15"))


# ------------------------------------------------------------------------------------------------ cost per model

class SplitCounter:
    """Model evaluations by weights: the main weights, or a weight hook switched in (the second model's)."""

    def __init__(self):
        self.main, self.hooked, self.main_calls, self.hooked_calls = 0, 0, 0, 0

    def __call__(self, executor, x, *args, **kwargs):
        if executor.class_obj.current_patcher.current_hooks is None:
            self.main, self.main_calls = self.main + x.shape[0], self.main_calls + 1
        else:
            self.hooked, self.hooked_calls = self.hooked + x.shape[0], self.hooked_calls + 1
        return executor(x, *args, **kwargs)


def split_counted(model):
    counter, clone = SplitCounter(), model.clone()
    clone.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "test_split_counter", counter)
    return clone, counter


# method: (cfg, (main evaluations, main calls, second evaluations, second calls) per step)
COSTS = {"autoguidance": [(1.0, (1, 1, 1, 1)), (CFG, (2, 1, 1, 1))],
         "unconditional_prior": [(1.0, (1, 1, 0, 0)), (CFG, (1, 1, 1, 1))],
         "domain_guidance": [(CFG, (1, 1, 1, 1))],
         "rlg": [(1.0, (1, 1, 1, 1)), (CFG, (2, 1, 2, 1))],
         "personalization": [(CFG, (1, 1, 1, 1))]}


@pytest.mark.parametrize("method", METHODS)
def test_model_evaluations_per_step_on_each_model(method):
    for cfg, expected in COSTS[method]:
        if method != "personalization":  # its weak model is always a weight variant of the main one
            main, main_counter = tm.counted(tm.make_model("sd3"))
            second, second_counter = tm.counted(tm.make_model("sd3", seed=1))
            tm.ksample(patch(method, main, second), "sd3", steps=4, cfg=cfg)
            got = (main_counter.samples, main_counter.calls, second_counter.samples, second_counter.calls)
            assert got == tuple(4 * n for n in expected), (method, cfg)
        base = tm.make_model("sd3")
        for main, second in ((with_lora(base), base), (tm.make_model("sd3"), tm.make_model("sd3", seed=1))):
            variant, counter = split_counted(main)
            tm.ksample(patch(method, variant, second), "sd3", steps=4, cfg=cfg)
            got = (counter.main, counter.main_calls, counter.hooked, counter.hooked_calls)
            assert got == tuple(4 * n for n in expected), (method, cfg, "weight variant")
            if method != "personalization":
                break


# ------------------------------------------------------------------------------------------------ shapes, dtypes

@pytest.mark.parametrize("kind", ("seeds", "lora"))
@pytest.mark.parametrize("method", METHODS)
def test_batch_of_two_equals_two_single_runs(method, kind):
    family = "wan21"
    main, second, _, _ = pair(kind, family)
    model = patch(method, main, second)
    tm.assert_batch_equals_single_runs(model, family, seeds=(3, 4), cfg=CFG)


@pytest.mark.parametrize("method", METHODS)
def test_finite_in_fp16_and_deterministic(method):
    main, second, _, _ = pair("lora", "flux", dtype=torch.float16)
    model = patch(method, main, second)
    out = tm.ksample(model, "flux", cfg=CFG)
    assert torch.isfinite(out).all()
    assert torch.equal(out, tm.ksample(model, "flux", cfg=CFG))


# ------------------------------------------------------------------------------------------------ guiders

GUIDERS = {"autoguidance": lambda m, s, p, n: AutoguidanceGuider.execute(m, s, p, n, 2.0, CFG),
           "unconditional_prior": lambda m, s, p, n: UnconditionalPriorGuider.execute(m, s, p, n, CFG),
           "domain_guidance": lambda m, s, p, n: DomainGuidanceGuider.execute(m, s, p, n, CFG),
           "rlg": lambda m, s, p, n: RLGGuider.execute(m, s, p, n, CFG, 1.6, 0),
           "personalization": lambda m, s, p, n: PersonalizationGuidanceGuider.execute(m, s, p, n, CFG, 0.0)}


@pytest.mark.parametrize("kind", ("seeds", "lora"))
@pytest.mark.parametrize("method", METHODS)
def test_guider_equals_the_model_patch_on_the_stock_sampler(method, kind):
    main, second, _, _ = pair(kind, "sd15")
    guider = GUIDERS[method](main, second, *tm.make_conds("sd15")).result[0]
    assert_close(run(guider, main, "sd15"), tm.ksample(patch(method, main, second), "sd15", cfg=CFG), rel=1e-5)


# ------------------------------------------------------------------------------------------------ families

SUPPORT = {"Autoguidance": ("lora", lambda m, s: Autoguidance.execute(m, s, 2.0)),
           "Unconditional priors": ("seeds", lambda m, s: UnconditionalPrior.execute(m, s)),
           "Domain guidance": ("lora", lambda m, s: DomainGuidance.execute(m, s)),
           "RLG": ("lora", lambda m, s: RLG.execute(m, s, 1.6, 0)),
           "Personalization guidance": ("seeds", lambda m, s: PersonalizationGuidance.execute(m, s, 0.5))}


@pytest.mark.parametrize("method,family", [pytest.param(m, f.values[0], id=f"{m}-{f.id}", marks=f.marks)
                                           for m in SUPPORT for f in cases(m, tm.FAMILIES)])
def test_changes_the_output_on_every_family(method, family):
    kind, make = SUPPORT[method]
    main, second, _, _ = pair(kind, family)
    out = tm.ksample(make(main, second).result[0], family, cfg=CFG)
    assert torch.isfinite(out).all()
    assert_differs(out, tm.ksample(main, family, cfg=CFG))


# ------------------------------------------------------------------------------------------------ errors

NAMES = {"autoguidance": "Autoguidance", "unconditional_prior": "Unconditional Prior", "domain_guidance":
         "Domain Guidance", "rlg": "RLG", "personalization": "Personalization Guidance"}


@pytest.mark.parametrize("method", METHODS)
def test_missing_second_model_or_family_mismatch_is_an_error_naming_the_node(method):
    main = tm.make_model("sd15")
    name = rf"{NAMES[method]} \(Guidance Zoo\)"
    with pytest.raises(NodeInputError, match=name + ".*missing"):
        patch(method, main, None)
    with pytest.raises(NodeInputError, match=name + ".*different families"):
        patch(method, main, tm.make_model("sdxl"))
    with pytest.raises(NodeInputError, match=name + ".*different families"):
        patch(method, tm.make_model("wan21"), tm.make_model("sd3"))


def test_weight_variant_with_a_patch_that_cannot_be_undone_is_an_error():
    base = tm.make_model("sd15")
    merged = base.clone()
    other = tm.make_model("sd15", seed=1)
    for key, value in other.get_key_patches("diffusion_model.").items():
        merged.add_patches({key: value}, 0.5, 0.5)  # ModelMergeSimple: strength_model 0.5
    with pytest.raises(NodeInputError, match=r"Unconditional Prior \(Guidance Zoo\).*cannot be undone"):
        UnconditionalPrior.execute(merged, base)
    UnconditionalPrior.execute(base, merged)  # the other way round: applied as it is


def test_guider_rejects_missing_conditioning():
    main, second = tm.make_model("sd15"), tm.make_model("sd15", seed=1)
    positive, _ = tm.make_conds("sd15")
    with pytest.raises(NodeInputError, match=r"Domain Guidance Guider \(Guidance Zoo\): 'negative'"):
        DomainGuidanceGuider.execute(main, second, positive, None, CFG)


# ------------------------------------------------------------------------------------------------ stacking

def test_stacks_with_apg_and_pag_and_keeps_the_main_model_untouched():
    base = tm.make_model("sd15")
    main = with_lora(base)
    before = tm.ksample(main, "sd15", cfg=CFG)
    stacked = PAG.execute(APG.execute(UnconditionalPrior.execute(main, base).result[0], 0.0, 15.0, -0.5).result[0],
                          3.0, "").result[0]
    counted, counter = split_counted(stacked)
    out = tm.ksample(counted, "sd15", cfg=CFG, steps=4)
    assert torch.isfinite(out).all()
    assert (counter.main, counter.main_calls, counter.hooked, counter.hooked_calls) == (8, 4, 4, 4)
    assert_close(tm.ksample(main, "sd15", cfg=CFG), before, rel=0)  # the hook's weights were switched back


def test_autoguidance_adds_to_pag():
    main, weak = tm.make_model("sd3"), tm.make_model("sd3", seed=1)
    pag = PAG.execute(main, 3.0, "").result[0]
    stacked = Autoguidance.execute(pag, weak, 1.5).result[0]
    assert_differs(tm.ksample(stacked, "sd3", cfg=CFG), tm.ksample(pag, "sd3", cfg=CFG))


def test_kernels():
    g = torch.Generator().manual_seed(0)
    d, c, w = (torch.randn(2, 4, 3, 5, 5, generator=g) for _ in range(3))
    torch.testing.assert_close(autoguidance(c, c, w, 2.5), w + 2.5 * (c - w))
    torch.testing.assert_close(rlg_combine(d, c, 0.0), d)
    torch.testing.assert_close(rlg_combine(d, c, 1.0), c)
    torch.testing.assert_close(rlg_combine(d, c, 2.0), 2 * c - d)


@pytest.mark.parametrize("method", METHODS)
def test_foreign_patches_of_both_models_keep_running(method):
    """Another pack's attention override and block replace on the main model, and on a separate second model (its
    own model_options), keep running and change nothing."""
    main, second = tm.make_model("flux"), tm.make_model("flux", seed=1)
    reference = tm.ksample(patch(method, main, second), "flux", cfg=CFG)
    foreign_main, main_calls = with_foreign_patches(main)
    foreign_second, second_calls = with_foreign_patches(second)
    assert_close(tm.ksample(patch(method, foreign_main, foreign_second), "flux", cfg=CFG), reference, rel=1e-5)
    assert main_calls["override"] > 0 and main_calls["block"] > 0
    if method != "personalization":  # its weak model is main's weights under a hook: main's patches run there
        assert second_calls["override"] > 0 and second_calls["block"] > 0


def test_pure_autoguidance_at_cfg_one_equals_the_paper_formula():
    main, second, main_ref, second_ref = pair("lora", "sd3")
    ours = tm.ksample(Autoguidance.execute(main, second, 2.3).result[0], "sd3", cfg=1.0)
    assert_close(ours, reference(main_ref, {"second": second_ref}, autoguidance_rule(2.3), "sd3", cfg=1.0))
