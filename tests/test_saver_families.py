"""An NFE saver on every family: CFG Schedule with skip_uncond runs the uncond pass only inside its sigma interval
(the mechanism: one evaluation instead of two outside it, counted on the model), and the result differs from plain
CFG there and equals it when the interval covers every step."""
import pytest

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from support_matrix import cases
import comfy.samplers

from guidance_zoo.nodes.cfg_schedule import CFGSchedule

STEPS = 4


def scheduled(model, low: float, high: float):
    return CFGSchedule.execute(model, "linear", 0.0, low, high, True).result[0]


@pytest.mark.parametrize("family", cases("CFG Schedule", tm.FAMILIES))
def test_cfg_schedule_skips_the_uncond_pass_outside_its_interval_on_every_family(family):
    model = tm.make_model(family)
    sigmas = comfy.samplers.calculate_sigmas(model.get_model_object("model_sampling"), "normal", STEPS)
    low, high = float(sigmas[1] + sigmas[2]) / 2, 2 * float(sigmas[0])
    counted, counter = tm.counted(scheduled(model, low, high))
    out = tm.ksample(counted, family, steps=STEPS, sampler="euler")
    assert counter.calls == STEPS and counter.samples == 2 + 2 + 1 + 1
    plain = tm.ksample(model, family, steps=STEPS)
    tm.assert_differs(out, plain)
    everywhere = tm.ksample(CFGSchedule.execute(model, "constant", 1.0, 0.0, high, True).result[0], family,
                            steps=STEPS)
    tm.assert_close(everywhere, plain, 1e-5)
