"""ControlNet with the two-model methods (Autoguidance, Unconditional Prior, Domain Guidance, RLG, Personalization
Guidance) on the tiny SD1.5 UNet: a random-weight ControlNet built from ComfyUI's own classes, attached to the conds
by ComfyUI's ControlNetApplyAdvanced node.

The ControlNet lives on the conds, so it runs for whichever model evaluates them: the main model's passes and the
second model's passes alike (a separate checkpoint through its own calc_cond_batch, or the main network under the
second model's weight hook). The tests assert exactly that against a reference that runs each model's
calc_cond_batch on its own, and that the other reading (ControlNet on the main model only) is a different result.
"""
import pytest
import torch

import tiny_models as tm
from tiny_models import assert_close, assert_differs
import comfy.cldm.cldm
import comfy.controlnet
import comfy.model_management
import comfy.ops
import comfy.samplers
import nodes as comfy_nodes  # ComfyUI's nodes.py (ControlNetApplyAdvanced)
from random_init import init_random_
from test_two_model import CFG, COSTS, METHODS, RULES, pair, patch, split_counted, with_lora

from guidance_zoo.nodes.autoguidance import Autoguidance
from guidance_zoo.nodes.personalization import PersonalizationGuidance
from guidance_zoo.nodes.rlg import RLG

FAMILY = "sd15"


class CountedControlNet:
    """A tiny SD1.5 ControlNet (comfy.cldm.cldm.ControlNet, as load_controlnet_state_dict builds it) with random
    weights everywhere, zero-convs included, so it changes the output; counts its evaluations (a forward hook)."""

    def __init__(self, seed: int = 7):
        cls, unet_config, _, _ = tm.FAMILIES[FAMILY]
        config = dict(cls(dict(unet_config)).unet_config)
        config.pop("out_channels")
        config.update(hint_channels=3, operations=comfy.ops.disable_weight_init, dtype=torch.float32, device=tm.CPU)
        control_model = init_random_(comfy.cldm.cldm.ControlNet(**config), seed)
        self.calls, self.samples = 0, 0
        control_model.register_forward_pre_hook(self._count, with_kwargs=True)
        self.net = comfy.controlnet.ControlNet(control_model, load_device=tm.CPU)
        g = torch.Generator().manual_seed(seed)
        height, width = (8 * s for s in tm.FAMILIES[FAMILY][2][1:])
        self.image = torch.rand(1, height, width, 3, generator=g)  # IMAGE layout (B, H, W, C)

    def _count(self, module, args, kwargs):
        self.calls, self.samples = self.calls + 1, self.samples + kwargs["x"].shape[0]

    def conds(self, strength: float = 1.0):
        """Positive and negative with the ControlNet applied, as the ControlNetApplyAdvanced node does."""
        positive, negative = tm.make_conds(FAMILY)
        return comfy_nodes.ControlNetApplyAdvanced().apply_controlnet(positive, negative, self.net, self.image,
                                                                      strength, 0.0, 1.0)


class Reference(comfy.samplers.CFGGuider):
    """The method's formula, each model run on its own through calc_cond_batch with the (ControlNet-carrying) conds;
    second_control=False strips the ControlNet from the second model's conds (the other possible reading)."""

    def __init__(self, main, others: dict, rule, second_control: bool):
        super().__init__(main)
        self.others, self.rule, self.second_control = others, rule, second_control

    def predict_noise(self, x, timestep, model_options=None, seed=None):
        if model_options is None:
            model_options = {}
        def run(name, which):
            patcher, conds = self.others.get(name, self.model_patcher), self.conds[which]
            if patcher is self.model_patcher:
                return comfy.samplers.calc_cond_batch(self.inner_model, [conds], x, timestep, model_options)[0]
            comfy.model_management.load_models_gpu([patcher])
            patcher.pre_run()
            if not self.second_control:
                conds = [{k: v for k, v in c.items() if k != "control"} for c in conds]
            return comfy.samplers.calc_cond_batch(patcher.model, [conds], x, timestep, {"transformer_options": {}})[0]
        return self.rule(run, self.cfg)


def reference(main, second, method, conds, second_control=True):
    guider = Reference(main, {"second": second}, RULES[method], second_control)
    guider.set_conds(*conds)
    guider.set_cfg(CFG)
    sigmas = comfy.samplers.calculate_sigmas(main.get_model_object("model_sampling"), "normal", 3)
    return guider.sample(tm.noise_for(FAMILY, [0]), tm.latent(FAMILY), comfy.samplers.sampler_object("euler"),
                         sigmas, disable_pbar=True, seed=0)


@pytest.mark.parametrize("kind", ("seeds", "lora"))
@pytest.mark.parametrize("method", METHODS)
def test_controlnet_runs_in_both_models_passes(method, kind):
    """(a) it changes the output; (c) it acts on the second model's pass too, exactly as in the reference."""
    cnet = CountedControlNet()
    main, second, main_ref, second_ref = pair(kind, FAMILY)
    model = patch(method, main, second)
    controlled = tm.ksample(model, FAMILY, cfg=CFG, conds=cnet.conds())
    assert torch.isfinite(controlled).all() and cnet.calls > 0
    assert_differs(controlled, tm.ksample(model, FAMILY, cfg=CFG))
    assert_close(controlled, reference(main_ref, second_ref, method, cnet.conds()))
    assert_differs(controlled, reference(main_ref, second_ref, method, cnet.conds(), second_control=False))


NEUTRAL = {"autoguidance": lambda m, s: Autoguidance.execute(m, s, 1.0),
           "rlg": lambda m, s: RLG.execute(m, s, 1.0, 0),
           "personalization": lambda m, s: PersonalizationGuidance.execute(m, s, 1.0)}


@pytest.mark.parametrize("method", METHODS)
def test_reduces_to_plain_cfg_with_the_same_controlnet(method):
    """(b) both models the same (one patcher, a separate copy of the weights, the same LoRA as a weight hook), or the
    neutral setting of the method: plain CFG with the same ControlNet."""
    cnet = CountedControlNet()
    conds = cnet.conds()
    main = tm.make_model(FAMILY)
    plain = tm.ksample(main, FAMILY, cfg=CFG, conds=conds)
    for second in (main, tm.make_model(FAMILY)):
        assert_close(tm.ksample(patch(method, main, second), FAMILY, cfg=CFG, conds=conds), plain)
    base = tm.make_model(FAMILY)
    tuned = with_lora(base)
    plain = tm.ksample(tuned, FAMILY, cfg=CFG, conds=conds)
    # hook: -LoRA +LoRA
    assert_close(tm.ksample(patch(method, tuned, with_lora(base)), FAMILY, cfg=CFG, conds=conds), plain)
    if method in NEUTRAL:
        assert_close(tm.ksample(NEUTRAL[method](tuned, base).result[0], FAMILY, cfg=CFG, conds=conds), plain)


@pytest.mark.parametrize("method", METHODS)
def test_model_evaluations_per_step_with_controlnet(method):
    """The ControlNet adds no diffusion-model pass: the per-model counts are those without it, and the ControlNet
    runs once per model call on the same samples."""
    steps = 4
    for cfg, expected in COSTS[method]:
        runs = []
        if method != "personalization":  # its weak model is always a weight variant of the main one
            main, main_counter = tm.counted(tm.make_model(FAMILY))
            second, second_counter = tm.counted(tm.make_model(FAMILY, seed=1))
            runs.append((main, second, lambda: (main_counter.samples, main_counter.calls, second_counter.samples,
                                                second_counter.calls)))
        base = tm.make_model(FAMILY)
        variant, counter = split_counted(with_lora(base))
        runs.append((variant, base, lambda: (counter.main, counter.main_calls, counter.hooked, counter.hooked_calls)))
        for main, second, got in runs:
            cnet = CountedControlNet()
            tm.ksample(patch(method, main, second), FAMILY, steps=steps, cfg=cfg, conds=cnet.conds())
            main_samples, main_calls, second_samples, second_calls = got()
            assert got() == tuple(steps * n for n in expected), (method, cfg)
            assert (cnet.samples, cnet.calls) == (main_samples + second_samples, main_calls + second_calls)
