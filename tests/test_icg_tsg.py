"""ICG and TSG (arXiv 2407.02687) on real ComfyUI with tiny models: kernels, what the uncond pass really receives,
effect, batch, fp16, repeatability, model-call counts, independence from the negative prompt, bad input."""
import hashlib

import pytest
import torch

import tiny_models as tm  # noqa: I001  (puts ComfyUI on sys.path)
from tiny_models import assert_differs
import comfy.patcher_extension
from support_matrix import cases

from guidance_zoo.core.icg import independent_condition
from guidance_zoo.core.tsg import perturbed_time_embedding
from guidance_zoo.guiders.schedule import diffusers_timestep

from guidance_zoo.guiders.tsg import time_embedding_module
from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.icg import IndependentConditionGuidance
from guidance_zoo.nodes.tsg import TimeStepGuidance

CFG = 4.0
FAMILIES = ("sd15", "flux", "wan21")
TSG_FAMILIES = tuple(f for f in tm.FAMILIES if tm.adapter(f).time_embeddings)
NO_TIME_EMBEDDING = tuple(f for f in tm.FAMILIES if f not in TSG_FAMILIES)
TSG_EVERYWHERE = dict(noise_scale=3.0, alpha=0.25, t_min=0.0, t_max=1000.0)


def icg(model):
    return IndependentConditionGuidance.execute(model).result[0]


def tsg(model, **overrides):
    return TimeStepGuidance.execute(model, **dict(TSG_EVERYWHERE, **overrides)).result[0]


METHODS = {"ICG": icg, "TSG": tsg}


def spy_apply_model(model, record):
    """A clone whose APPLY_MODEL calls are recorded: (conditioning kwargs, cond_or_uncond, sigma)."""
    def spy(executor, x, t, c_concat=None, c_crossattn=None, control=None, transformer_options=None, **kwargs):
        if transformer_options is None:
            transformer_options = {}
        record.append(dict(context=c_crossattn, y=kwargs.get("y"), chunks=list(transformer_options["cond_or_uncond"]),
                           sigma=t))
        return executor(x, t, c_concat, c_crossattn, control, transformer_options, **kwargs)
    clone = model.clone()
    clone.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "guidance_zoo_test_spy", spy)
    return clone


def test_icg_kernel_matches_each_samples_statistics():
    g = torch.Generator().manual_seed(0)
    real = torch.randn(3, 7, 16, generator=g) * torch.tensor([0.5, 2.0, 4.0]).view(3, 1, 1) + 1.5
    noise = torch.randn(3, 7, 16, generator=g)
    out = independent_condition(real, noise)
    for i in range(3):
        torch.testing.assert_close(out[i], real[i].mean() + real[i].std() * noise[i])
    assert independent_condition(real[1:2], noise[1:2]).equal(out[1:2])


def test_icg_kernel_leaves_padding_tokens_out_of_the_statistics_and_in_place():
    g = torch.Generator().manual_seed(0)
    real = torch.cat([torch.zeros(2, 5, 16), torch.randn(2, 7, 16, generator=g) * 3 + 1], dim=1)
    noise = torch.randn(2, 12, 16, generator=g)
    valid = real.abs().amax(-1) > 0
    out = independent_condition(real, noise, valid)
    assert (out[:, :5] == 0).all()
    for i in range(2):
        torch.testing.assert_close(out[i, 5:], real[i, 5:].mean() + real[i, 5:].std() * noise[i, 5:])


def test_tsg_kernel_is_the_papers_power_schedule():
    g = torch.Generator().manual_seed(1)
    emb, noise = torch.randn(2, 32, generator=g) * 3.0, torch.randn(2, 32, generator=g)
    out = perturbed_time_embedding(emb, noise, 0.64, 3.0, 0.25)
    expected = torch.stack([emb[i] + 3.0 * 0.64 ** 0.25 * emb[i].std() * noise[i] for i in range(2)])
    torch.testing.assert_close(out, expected)
    assert perturbed_time_embedding(emb, noise, 0.64, 0.0, 0.25).equal(emb)


@pytest.mark.parametrize("family", cases("ICG", tm.FAMILIES))
def test_icg_uncond_pass_gets_a_random_condition_with_the_prompts_statistics(family):
    positive, negative = tm.make_conds(family, seed=1)
    record = []
    tm.ksample(spy_apply_model(icg(tm.make_model(family)), record), family, cfg=CFG, steps=2, seeds=(0, 1),
               conds=(positive, negative))
    assert len(record) == 2 and all(r["chunks"] == [1, 0] or r["chunks"] == [0, 1] for r in record)
    real = positive[0][0][0]
    drawn = []
    for r in record:
        rows = r["context"].chunk(2)
        assert rows[0].shape == rows[1].shape and rows[0].shape[0] == 2
        # the prompt's tokens (a model may pad the context with zeros, as Flux2 does before them)
        uncond, cond = (rows[r["chunks"].index(i)] for i in (1, 0))
        prompt = cond[0].abs().amax(-1) > 0
        assert (uncond[:, ~prompt] == 0).all()      # padding stays padding
        uncond, cond = uncond[:, prompt], cond[:, prompt]
        assert uncond.shape == cond.shape == (2,) + real.shape
        assert not torch.allclose(uncond, negative[0][0].expand_as(uncond))
        tolerance = 5.0 / real.numel() ** 0.5
        for i in range(2):
            assert abs(float(uncond[i].mean() - real.mean())) < tolerance * float(real.std())
            assert abs(float(uncond[i].std() / real.std()) - 1) < tolerance
        assert not torch.allclose(uncond[0], uncond[1])
        drawn.append(uncond)
        if tm.FAMILIES[family][3]:
            pooled = positive[0][1]["pooled_output"]
            y = r["y"].chunk(2)[r["chunks"].index(1)]
            y_cond = r["y"].chunk(2)[r["chunks"].index(0)]
            width = pooled.shape[-1]
            assert not torch.allclose(y[:, :width], y_cond[:, :width])
            torch.testing.assert_close(y[:, width:], y_cond[:, width:])  # SDXL's size embeddings stay the prompt's
    assert not torch.allclose(drawn[0], drawn[1])  # redrawn at every model call


@pytest.mark.parametrize("family", cases("TSG", TSG_FAMILIES))
def test_tsg_perturbs_only_the_uncond_rows_time_embedding_by_the_papers_rule(family):
    model = tsg(tm.make_model(family), noise_scale=2.0, alpha=1.0)
    module = time_embedding_module(model.get_model_object("diffusion_model"))
    seen = []
    handle = module.register_forward_hook(lambda _m, _i, out: seen.append(out.detach().clone()))
    record = []
    try:
        tm.ksample(spy_apply_model(model, record), family, cfg=CFG, steps=3)
    finally:
        handle.remove()
    assert len(seen) == len(record) == 3
    for out, r in zip(seen, record):
        cond, uncond = out.chunk(2)[r["chunks"].index(0)], out.chunk(2)[r["chunks"].index(1)]
        t = diffusers_timestep(model.model, r["sigma"][:1], {}) / 1000.0
        if t == 0:  # t^alpha = 0: no perturbation (the last step of a discrete schedule)
            torch.testing.assert_close(uncond, cond, rtol=0, atol=0)
            continue
        n = (uncond - cond) / (2.0 * t * cond.float().std())
        assert abs(float(n.mean())) < 0.25 and abs(float(n.std()) - 1.0) < 0.25, (float(n.mean()), float(n.std()))


@pytest.mark.parametrize("name,family", [pytest.param(m, p.values[0], id=f"{m}-{p.id}", marks=p.marks)
                                         for m, families in (("ICG", tm.FAMILIES), ("TSG", TSG_FAMILIES))
                                         for p in cases(m, families)])
def test_method_changes_the_output_and_ignores_the_negative_prompt(name, family):
    model = tm.make_model(family)
    positive, negative = tm.make_conds(family, seed=1)
    _, other_negative = tm.make_conds(family, seed=5)
    plain = tm.ksample(model, family, cfg=CFG, conds=(positive, negative))
    out = tm.ksample(METHODS[name](model), family, cfg=CFG, conds=(positive, negative))
    assert torch.isfinite(out).all()
    assert_differs(out, plain)
    torch.testing.assert_close(tm.ksample(METHODS[name](model), family, cfg=CFG, conds=(positive, other_negative)),
                               out, rtol=0, atol=0)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("name", list(METHODS))
def test_method_batch_of_two_equals_two_single_runs(name, family):
    model = METHODS[name](tm.make_model(family))
    tm.assert_batch_equals_single_runs(model, family, seeds=(3, 4), cfg=CFG)


@pytest.mark.parametrize("name", list(METHODS))
def test_method_is_finite_in_fp16_and_repeats_exactly(name):
    model = METHODS[name](tm.make_model("sd15", dtype=torch.float16))
    first = tm.ksample(model, "sd15", cfg=8.0, steps=4)
    assert torch.isfinite(first).all()
    torch.testing.assert_close(tm.ksample(model, "sd15", cfg=8.0, steps=4), first, rtol=0, atol=0)
    flux = METHODS[name](tm.make_model("flux"))
    torch.testing.assert_close(tm.guider_sample(flux, "flux", seeds=(1,)), tm.guider_sample(flux, "flux", seeds=(1,)),
                               rtol=0, atol=0)


def documented_draw(first_x: torch.Tensor, call: int, salt: str, shape: tuple) -> torch.Tensor:
    """guiders/sample_noise.py's documented seeding, rebuilt here: a CPU generator seeded from a blake2b fingerprint
    of the sample's latent at the run's first model call, the model-call index and '<method>/<stream>'."""
    def digest(*parts: bytes) -> int:
        h = hashlib.blake2b(digest_size=8)
        for part in parts:
            h.update(part)
        return int.from_bytes(h.digest(), "little") & ((1 << 63) - 1)
    fingerprint = digest(first_x.detach().float().contiguous().numpy().tobytes())
    seed = digest(fingerprint.to_bytes(8, "little"), call.to_bytes(8, "little"), salt.encode())
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def first_model_input(model, family: str, **sample_args) -> torch.Tensor:
    """The latent (batch 1) the model receives at the first call of a run with the same noise."""
    record = []

    def spy(executor, x, *args, **kwargs):
        record.append(x[:1].clone())
        return executor(x, *args, **kwargs)
    clone = model.clone()
    clone.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "guidance_zoo_test_first_x", spy)
    tm.ksample(clone, family, **sample_args)
    return record[0]


@pytest.mark.parametrize("family", ("sd15", "flux"))
def test_icg_step_equals_cfg_against_the_documented_seeded_condition_for_the_same_noise(family):
    """Same noise: one ICG step is plain CFG with the negative replaced by the condition drawn as documented (seeded
    by the first model input, call 0, salt icg/text0 and icg/pooled0), and not CFG with the real negative nor with
    the condition a changed seed (call 1) would draw: ICG is no no-op, its draw comes from the documented seed."""
    model = tm.make_model(family)
    positive, negative = tm.make_conds(family, seed=1)
    ours = tm.ksample(icg(model), family, cfg=CFG, steps=1, conds=(positive, negative))
    torch.testing.assert_close(tm.ksample(icg(model), family, cfg=CFG, steps=1, conds=(positive, negative)), ours,
                               rtol=0, atol=0)
    first_x = first_model_input(model, family, cfg=CFG, steps=1, conds=(positive, negative))

    def drawn_negative(call: int):
        text, extra = positive[0]
        random_text = text.mean() + text.std() * documented_draw(first_x, call, "icg/text0", text.shape[1:])[None]
        extra = dict(extra)
        if extra.get("pooled_output") is not None:
            pooled = extra["pooled_output"]
            extra["pooled_output"] = pooled.mean() + pooled.std() * documented_draw(
                first_x, call, "icg/pooled0", pooled.shape[1:])[None]
        return [[random_text, extra]]
    expected = tm.ksample(model, family, cfg=CFG, steps=1, conds=(positive, drawn_negative(0)))
    tm.assert_close(ours, expected)
    assert_differs(ours, tm.ksample(model, family, cfg=CFG, steps=1, conds=(positive, negative)))
    assert_differs(ours, tm.ksample(model, family, cfg=CFG, steps=1, conds=(positive, drawn_negative(1))))


def test_tsg_step_equals_cfg_against_the_documented_seeded_time_embedding_for_the_same_noise():
    """Same noise: one TSG step is CFG whose uncond pass is the positive prompt with the time-step embedding perturbed
    test-side by e + s t^alpha std(e) n, n drawn as documented (first model input, call 0, salt tsg/); it differs
    from plain CFG and from the same perturbation with a changed seed (call 1)."""
    model = tm.make_model("sd15")
    positive, negative = tm.make_conds("sd15", seed=1)
    ours = tm.ksample(tsg(model), "sd15", cfg=CFG, steps=1, conds=(positive, negative))
    torch.testing.assert_close(tm.ksample(tsg(model), "sd15", cfg=CFG, steps=1, conds=(positive, negative)), ours,
                               rtol=0, atol=0)
    first_x = first_model_input(model, "sd15", cfg=CFG, steps=1, conds=(positive, negative))
    sampling = model.get_model_object("model_sampling")

    def perturbed_uncond(call: int) -> torch.Tensor:
        def spy(executor, x, t, *args, **kwargs):
            options = args[3] if len(args) > 3 else kwargs["transformer_options"]
            chunks = list(options["cond_or_uncond"])
            time = float(sampling.timestep(t[:1])) / 1000.0

            def hook(_module, _inputs, out):
                rows = out.chunk(len(chunks))[chunks.index(1)]
                n = documented_draw(first_x, call, "tsg/", (1,) + tuple(rows.shape[1:]))
                changed = rows + TSG_EVERYWHERE["noise_scale"] * time ** TSG_EVERYWHERE["alpha"] * rows.std() * n
                return torch.cat([changed if c == 1 else part for c, part in zip(chunks, out.chunk(len(chunks)))])
            handle = executor.class_obj.diffusion_model.time_embed.register_forward_hook(hook)
            try:
                return executor(x, t, *args, **kwargs)
            finally:
                handle.remove()
        clone = model.clone()
        clone.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "guidance_zoo_test_tsg", spy)
        same_as_positive = [[t.clone(), dict(e)] for t, e in positive]
        return tm.ksample(clone, "sd15", cfg=CFG, steps=1, conds=(positive, same_as_positive))
    tm.assert_close(ours, perturbed_uncond(0))
    assert_differs(ours, tm.ksample(model, "sd15", cfg=CFG, steps=1, conds=(positive, negative)))
    assert_differs(ours, tm.ksample(model, "sd15", cfg=1.0, steps=1, conds=(positive, negative)))
    assert_differs(ours, perturbed_uncond(1))


@pytest.mark.parametrize("name", list(METHODS))
def test_method_costs_two_evaluations_per_step_in_one_call_and_nothing_at_cfg_one(name):
    model = tm.make_model("sd15")
    counted, counter = tm.counted(METHODS[name](model))
    tm.ksample(counted, "sd15", cfg=CFG, steps=6)
    assert counter.samples == 12 and counter.calls == 6
    print(f"{name}: {counter.samples} evaluations in 6 steps")
    at_one, one_counter = tm.counted(METHODS[name](model))
    torch.testing.assert_close(tm.ksample(at_one, "sd15", cfg=1.0, steps=6),
                               tm.ksample(model, "sd15", cfg=1.0, steps=6),
                               rtol=0, atol=0)
    assert one_counter.samples == 6


def test_tsg_skips_the_uncond_pass_outside_its_interval():
    model = tm.make_model("sd15")
    counted, counter = tm.counted(tsg(model, t_min=400.0, t_max=1000.0))
    tm.ksample(counted, "sd15", cfg=CFG, steps=10)
    sampling = model.get_model_object("model_sampling")
    sigmas = comfy.samplers.calculate_sigmas(sampling, "normal", 10)[:-1]
    inside = sum(400.0 <= float(sampling.timestep(s.view(1))) <= 1000.0 for s in sigmas)
    assert 0 < inside < 10 and counter.samples == 10 + inside
    print(f"TSG [400, 1000]: {counter.samples} evaluations in 10 steps ({inside} inside the interval)")
    cond_only = tm.ksample(tsg(model, t_min=1000.0, t_max=1000.0), "sd15", cfg=CFG, steps=4)
    torch.testing.assert_close(cond_only, tm.ksample(model, "sd15", cfg=1.0, steps=4), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("inputs,message", [
    (dict(noise_scale=float("nan")), "noise_scale"), (dict(alpha=-1.0), "alpha"), (dict(t_max=2000.0), "t_max"),
    (dict(t_min=800.0, t_max=200.0), "interval is empty")])
def test_tsg_rejects_bad_input_naming_the_node(inputs, message):
    with pytest.raises(NodeInputError, match=f"TSG.*{message}"):
        tsg(tm.make_model("sd15"), **inputs)


@pytest.mark.parametrize("family", cases("TSG", [], NO_TIME_EMBEDDING))
def test_tsg_refuses_a_family_whose_adapter_names_no_time_embedding(family):
    with pytest.raises(NodeInputError, match="TSG.*time-step embedding"):
        tsg(tm.make_model(family))


def test_tsg_refuses_a_model_without_a_time_embedding_it_knows():
    model = tm.make_model("sd15")
    del model.model.diffusion_model.time_embed
    with pytest.raises(NodeInputError, match="TSG.*time-step embedding"):
        tsg(model)


@pytest.mark.parametrize("family", ("sd15", "flux"))
def test_tsg_and_icg_stack_with_pag_and_apg_in_one_call_per_step(family):
    from guidance_zoo.nodes.apg import APG
    from guidance_zoo.nodes.pag import PAG
    model = tm.make_model(family)
    with_pag = PAG.execute(tsg(model), 3.0, "").result[0]
    counted, counter = tm.counted(with_pag)
    out = tm.ksample(counted, family, cfg=CFG, steps=4)
    assert torch.isfinite(out).all() and counter.samples == 12 and counter.calls == 4
    assert float((out - tm.ksample(tsg(model), family, cfg=CFG, steps=4)).abs().max()) > 1e-4
    apg = APG.execute(icg(model), 0.0, 15.0, -0.5).result[0]
    stacked = tm.ksample(apg, family, cfg=CFG, steps=4)
    assert torch.isfinite(stacked).all()
    assert float((stacked - tm.ksample(icg(model), family, cfg=CFG, steps=4)).abs().max()) > 1e-4
