"""The trained digits model and its nodes (library mode), a real effect test, and a reduced benchmark run."""
import importlib.util
import os

import numpy as np
import pytest
import torch

import tiny_models as tm  # noqa: F401  (puts ComfyUI on the path in CPU library mode)
import comfy.sample

from guidance_zoo.nodes import NODES
from guidance_zoo.nodes import digits_model as dm
from guidance_zoo.nodes.common import NodeInputError
from guidance_zoo.nodes.digits import NULL_CHOICE, DigitPrompt, DigitsDecode, DigitsModelLoader

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def loaded():
    model, context = DigitsModelLoader.execute(dm.DEFAULT_WEIGHTS).result
    return model, context


@pytest.fixture(scope="module")
def classifier():
    return dm.classifier(probability=False)


def _sample(model, positive, negative, batch, cfg, steps=10, seed=0):
    latent = torch.zeros((batch,) + dm.LATENT_SHAPE)
    noise = comfy.sample.prepare_noise(latent, seed)
    return comfy.sample.sample(model, noise, steps, cfg, "euler", "normal", positive, negative, latent,
                               denoise=1.0, disable_pbar=True, seed=seed)


def test_weights_ship_with_the_pack_and_are_small():
    path = dm.weights_path()
    assert os.path.isfile(path)
    assert os.path.getsize(path) < 5e6
    assert os.path.isfile(os.path.join(dm.WEIGHTS_DIR, "train_log.txt"))


def test_nodes_are_registered_with_tooltips_and_descriptions():
    ids = {n.define_schema().node_id for n in NODES}
    assert {"GuidanceZooDigitsModelLoader", "GuidanceZooDigitPrompt", "GuidanceZooDigitsDecode"} <= ids
    for node in (DigitsModelLoader, DigitPrompt, DigitsDecode):
        schema = node.define_schema()
        assert schema.description
        assert all(i.tooltip for i in schema.inputs)


def test_loader_gives_a_model_that_samples(loaded):
    model, context = loaded
    assert context.shape == (dm.NULL + 1, dm.CONTEXT_TOKENS, dm.CONTEXT_DIM)
    positive, negative = DigitPrompt.execute(context, "5").result
    out = _sample(model, positive, negative, batch=2, cfg=4.0, steps=4)
    assert out.shape == (2,) + dm.LATENT_SHAPE
    assert torch.isfinite(out).all()


def test_prompt_gives_digit_and_null_conditioning(loaded):
    _, context = loaded
    positive, negative = DigitPrompt.execute(context, "7").result
    assert len(positive) == 1 and len(negative) == 1
    assert positive[0][0].shape == (1, dm.CONTEXT_TOKENS, dm.CONTEXT_DIM)
    assert torch.equal(positive[0][0][0], context[7])
    assert torch.equal(negative[0][0][0], context[dm.NULL])
    null_pos, _ = DigitPrompt.execute(context, NULL_CHOICE).result
    assert torch.equal(null_pos[0][0][0], context[dm.NULL])
    with pytest.raises(NodeInputError, match="Digit Prompt"):
        DigitPrompt.execute(context, "12")
    with pytest.raises(NodeInputError, match="Digits Model Loader"):
        DigitPrompt.execute(torch.zeros(3, 4), "1")


def test_decode_gives_an_image_in_unit_range():
    samples = {"samples": torch.randn(3, *dm.LATENT_SHAPE) * 20}  # far outside the data range: clipped
    (image,) = DigitsDecode.execute(samples, 4).result
    assert image.shape == (3, 128, 128, 3)
    assert float(image.min()) >= 0.0 and float(image.max()) <= 1.0
    (small,) = DigitsDecode.execute(samples, 1).result
    assert torch.equal(image[:, ::4, ::4], small)
    # the decode inverts the representation: real digits come back as themselves
    images, _ = dm.load_digits()
    pixels = dm.images_to_pixels(images[:4])
    latent = dm.pixels_to_x0(pixels) / dm.LATENT_SCALE
    (back,) = DigitsDecode.execute({"samples": latent}, 1).result
    assert torch.allclose(back[..., 0], dm.pixels_to_unit(pixels), atol=1e-5)
    with pytest.raises(NodeInputError, match="Digits Decode"):
        DigitsDecode.execute({"samples": torch.zeros(1, 16, 16, 16)}, 4)


def test_class_conditional_samples_at_cfg_4_show_the_digit(loaded, classifier):
    """A real effect: the trained model draws the digit asked for (20 samples, one per digit and seed pair)."""
    model, context = loaded
    labels = torch.arange(10).repeat(2)
    positive = [[context[labels].clone(), {}]]
    negative = dm.conditioning(context, dm.NULL)
    out = _sample(model, positive, negative, batch=len(labels), cfg=4.0, steps=10, seed=3)
    pixels = dm.latent_to_pixels(out).clamp(-dm.RANGE, dm.RANGE).reshape(len(labels), -1).numpy()
    accuracy = float((classifier.predict(pixels) == labels.numpy()).mean())
    assert accuracy >= 0.8, accuracy


def test_the_model_reads_its_time_step(loaded):
    """The same input at t = 100 and t = 900 gives clearly different predictions (TSG perturbs the time embedding)."""
    model, context = loaded
    net = model.model.diffusion_model
    x = torch.randn((4,) + dm.LATENT_SHAPE, generator=torch.Generator().manual_seed(0))
    ctx = context[torch.tensor([1, 3, 7, dm.NULL])]
    with torch.no_grad():
        early, late = (net(x, torch.full((4,), float(t)), context=ctx) for t in (100, 900))
    change = float((early - late).norm() / late.norm())
    print(f"relative change of the prediction between t = 100 and 900: {change:.3f}")
    assert change > 0.1, change


def test_cfg_1_draws_the_digit_asked_for_and_never_noise(loaded, classifier):
    """200 samples at cfg 1 (20 per digit, euler 20 steps, the benchmark's settings). A noise sample is one three
    times rougher than the roughest real digit (pure noise is about ten times rougher; a digit with some speckle left
    one to three times). The shipped weights give accuracy 0.965 and no noise sample; this guards issue 17's level
    (0.95, none in 200)."""
    model, context = loaded
    labels = torch.arange(10).repeat(20)
    out = _sample(model, [[context[labels].clone(), {}]], dm.conditioning(context, dm.NULL), batch=len(labels),
                  cfg=1.0, steps=20, seed=0)
    pixels = dm.latent_to_pixels(out)
    accuracy = float((classifier.predict(pixels.clamp(-dm.RANGE, dm.RANGE).reshape(len(labels), -1).numpy())
                      == labels.numpy()).mean())
    real = dm.roughness(dm.images_to_pixels(dm.load_digits()[0]))
    rough = dm.roughness(pixels)
    noisy, speckled = int((rough > 3 * real.max()).sum()), int((rough > real.max()).sum())
    print(f"cfg 1: accuracy {accuracy:.3f}, noise samples {noisy} of {len(labels)} ({speckled} rougher than any real "
          "digit)")
    assert accuracy >= 0.95 and noisy == 0, (accuracy, noisy)


def _benchmark_module():
    path = os.path.join(REPO, "scripts", "benchmark_digits.py")
    spec = importlib.util.spec_from_file_location("benchmark_digits", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_benchmark_lists_every_model_patch_node():
    bench = _benchmark_module()
    labels = [s[0] for s in bench.settings()]
    assert [label for label in labels if label.startswith("CFG ")] == [f"CFG {c:g}" for c in bench.BASELINE_CFGS]
    assert "APG @ cfg 12" in labels and "PAG @ cfg 1" in labels
    assert {"GuidanceZooAPG", "GuidanceZooPAG", "CFG"} <= set(bench.CLAIMS)


def test_reduced_benchmark_run(tmp_path):
    bench = _benchmark_module()
    rc = bench.main(["--per-digit", "2", "--groups", "1", "--steps", "4", "--only", "CFG 4", "APG @ cfg 4",
                     "PAG @ cfg 1", "--out", str(tmp_path)])
    assert rc == 0
    text = (tmp_path / "benchmark.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| setting")]
    assert len(rows) == 3, text
    assert any(r.startswith("| APG @ cfg 4") for r in rows)
    nfe = {r.split("|")[1].strip().split(" (")[0]: float(r.split("|")[8]) for r in rows}
    assert nfe["CFG 4"] == 8.0            # 2 evaluations per step, 4 steps
    assert nfe["PAG @ cfg 1"] == 8.0      # cond + perturbed at cfg 1
    assert (tmp_path / "benchmark_sheet.png").stat().st_size > 0
    assert np.isfinite([float(c.split()[0]) for r in rows for c in r.split("|")[2:8]]).all()


def test_benchmark_resumes_from_its_kept_settings(tmp_path, capsys):
    """--resume keeps each finished setting; a later run takes them (same row) and measures only the rest; a run whose
    --minutes are up leaves the rest pending and writes no table."""
    bench = _benchmark_module()
    quick = ["--per-digit", "1", "--groups", "1", "--steps", "2", "--resume", str(tmp_path / "kept")]

    def table(out, *only, minutes=None):
        extra = ["--minutes", str(minutes)] if minutes is not None else []
        assert bench.main(quick + extra + ["--out", str(tmp_path / out), "--only", *only]) == 0
        path = tmp_path / out / "benchmark.md"
        return [line for line in path.read_text().splitlines() if line.startswith("| ") and "setting" not in line] \
            if path.exists() else None

    first = table("a", "CFG 4")
    capsys.readouterr()
    second = table("b", "CFG 4", "APG @ cfg 4")
    assert "CFG 4                            (from" in capsys.readouterr().out
    assert second[0] == first[0] and second[1].startswith("| APG @ cfg 4")
    assert table("c", "CFG 4", "PAG @ cfg 1", minutes=0) is None
    assert "1 of 2 settings done" in capsys.readouterr().out


def test_demo_makes_a_digits_sheet(tmp_path):
    """scripts/demo.py's default path on one digits workflow (shortened: 3 steps, batch 2): a real server run per
    digit, the images and the sheet."""
    import json
    spec = importlib.util.spec_from_file_location("gz_demo", os.path.join(REPO, "scripts", "demo.py"))
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    workflow = json.load(open(os.path.join(REPO, "workflows", "digits_apg.json"), encoding="utf-8"))
    for node in workflow["nodes"]:
        if node["type"] == "KSampler":
            node["widgets_values"][2] = 3
        elif node["type"] == "EmptyLatentImage":
            node["widgets_values"][2] = 2
    path = tmp_path / "digits_apg.json"
    path.write_text(json.dumps(workflow))
    out = tmp_path / "out"
    env = os.environ.pop("COMFYUI_URL", None)
    try:
        assert demo.main([str(path), "--out", str(out)]) == 0
    finally:
        if env is not None:
            os.environ["COMFYUI_URL"] = env
    assert len(list(out.glob("digits_apg_digit*_*.png"))) == 20
    assert (out / "digits_sheet.png").stat().st_size > 0
    assert (out / "digits_apg.api.json").exists()
