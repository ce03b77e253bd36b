"""GPU benchmark: full-size random-weight SDXL, Flux and Wan 2.1 1.3B built on the GPU from ComfyUI's own classes (no
downloads), every listed method at its node defaults and the core nodes that do the same job, seconds per step and
peak VRAM; prints a markdown table last. Run through scripts/bench_gpu.sh (see its header).

    python scripts/bench_gpu.py [--steps 8] [--models sdxl,flux,wan] [--methods CFG,PAG,...] [--tiny]

--tiny builds the tests' tiny configs on the CPU instead (2 steps): what the test suite runs, so the script cannot rot
without a GPU. Rows: ours and the core peers (core PAG, SkipLayerGuidanceDiT, APG, TCFG, RescaleCFG and, on
ComfyUI 0.33, NAGuidance), each "s/step, peak GiB" with the peak above the loaded model. Models are built one at a
time and freed, so the H200's memory holds each alone.
"""
import argparse
import gc
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "harness"))
import runtime_paths  # noqa: E402

TINY = "--tiny" in sys.argv
runtime_paths.use_comfyui(cpu=TINY)
runtime_paths.register_pack()
import torch  # noqa: E402

import comfy.model_management as mm  # noqa: E402
import comfy.model_patcher  # noqa: E402
import comfy.sample  # noqa: E402
import comfy.supported_models as sm  # noqa: E402
import tiny_models as tm  # noqa: E402
from measured_figures import default_inputs  # noqa: E402

from guidance_zoo.nodes import apg, cfg_cache, nag, pag, pladis, seg, slg, tcfg, tpg  # noqa: E402

# name: (config class, full unet_config, latent shape, text width, pooled width, text tokens, dtype, tiny family)
MODELS = {
    "sdxl": (sm.SDXL, dict(tm.FAMILIES["sdxl"][1], model_channels=320, channel_mult=[1, 2, 4],
                           num_res_blocks=[2, 2, 2], transformer_depth=[0, 0, 2, 2, 10, 10],
                           transformer_depth_output=[0, 0, 0, 2, 2, 2, 10, 10, 10],
                           transformer_depth_middle=10, context_dim=2048, adm_in_channels=2816, num_head_channels=64),
             (4, 128, 128), 2048, 1280, 77, torch.float16, "sdxl"),
    "flux": (sm.Flux, dict(tm.FAMILIES["flux"][1], hidden_size=3072, num_heads=24, depth=19, depth_single_blocks=38,
                           context_in_dim=4096, vec_in_dim=768, axes_dim=[16, 56, 56], mlp_ratio=4.0),
             (16, 128, 128), 4096, 768, 256, torch.bfloat16, "flux"),
    "wan": (sm.WAN21_T2V, dict(tm.FAMILIES["wan21"][1], dim=1536, ffn_dim=8960, num_heads=12, num_layers=30,
                               text_dim=4096, freq_dim=256),
            (16, 9, 60, 104), 4096, None, 512, torch.bfloat16, "wan21"),
}


def core(module: str, name: str, **kwargs):
    """model -> the core node `name` of comfy_extras.`module` applied with kwargs; None where this ComfyUI lacks it."""
    import importlib
    try:
        node = getattr(importlib.import_module(f"comfy_extras.{module}"), name)
    except (ImportError, AttributeError):
        return None
    if hasattr(node, "execute"):
        return lambda m: node.execute(m, **kwargs)[0]
    return lambda m: getattr(node(), node.FUNCTION)(m, **kwargs)[0]  # a legacy (V1) node


def ours(node, extra):
    """(model, conds) -> our node at its defaults, with extra(conds) as further inputs (NAG's negative prompt)."""
    return lambda m, conds: node.execute(m, **{**default_inputs(node), **extra(conds)}).result[0]


METHODS = {
    "CFG": lambda m, conds: m,
    "APG": ours(apg.APG, lambda c: {}),
    "core APG": core("nodes_apg", "APG", eta=1.0, norm_threshold=5.0, momentum=-0.5),
    "TCFG": ours(tcfg.TCFG, lambda c: {}),
    "core TCFG": core("nodes_tcfg", "TCFG"),
    "core RescaleCFG": core("nodes_model_advanced", "RescaleCFG", multiplier=0.7),
    "PAG": ours(pag.PAG, lambda c: {}),
    "core PAG": core("nodes_pag", "PerturbedAttentionGuidance", scale=3.0),
    "SEG": ours(seg.SEG, lambda c: {}),
    "TPG": ours(tpg.TPG, lambda c: {}),
    "SLG": ours(slg.SkipLayerGuidance, lambda c: {}),
    "core SLG": core("nodes_slg", "SkipLayerGuidanceDiT", scale=3.0, start_percent=0.01, end_percent=0.15,
                     double_layers="7, 8, 9", single_layers="7, 8, 9"),
    "PLADIS": ours(pladis.PLADIS, lambda c: {}),
    "NAG": ours(nag.NAG, lambda c: {"negative": c[1]}),
    "core NAG": core("nodes_nag", "NAGuidance", nag_scale=5.0, nag_alpha=0.5, nag_tau=1.5),
    "FasterCache": ours(cfg_cache.FasterCacheCFGCache, lambda c: {}),
}
for _name in [n for n, f in METHODS.items() if f is None]:
    del METHODS[_name]
for _name in [n for n in METHODS if n.startswith("core ")]:
    _apply = METHODS[_name]
    METHODS[_name] = (lambda apply: lambda m, conds: apply(m))(_apply)


def build(name: str):
    """(ModelPatcher, conds, latent) of one model: full size on the GPU, or its tiny config on the CPU."""
    config_cls, config, shape, width, pooled, tokens, dtype, family = MODELS[name]
    if TINY:
        model = tm.make_model(family)
        return model, tm.make_conds(family), tm.latent(family)
    device = mm.get_torch_device()
    config = config_cls(tm.unet_config_for(family, **config))
    config.set_inference_dtype(dtype, None)
    with torch.device(device):
        base = config.get_model({}, "", device=device)
    for p in base.diffusion_model.parameters():
        p.data.normal_(0, 0.02)
    patcher = comfy.model_patcher.ModelPatcher(base, load_device=device, offload_device=device)
    g = torch.Generator().manual_seed(1)

    def one():
        extra = {"pooled_output": torch.randn(1, pooled, generator=g) if pooled else None}
        if name == "flux":
            extra["guidance"] = 3.5
        return [[torch.randn(1, tokens, width, generator=g), extra]]
    return patcher, (one(), one()), torch.zeros((1,) + shape)


def run(model, conds, latent, steps: int, cfg: float) -> float:
    noise = comfy.sample.prepare_noise(latent, 0)
    start = time.perf_counter()
    comfy.sample.sample(model, noise, steps, cfg, "euler", "normal", conds[0], conds[1], latent, denoise=1.0,
                        disable_pbar=True, seed=0)
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--tiny", action="store_true")
    opts = parser.parse_args()
    steps = 2 if TINY else opts.steps
    models, methods = opts.models.split(","), [m for m in opts.methods.split(",") if m in METHODS]
    cells = {}
    for name in models:
        model, conds, latent = build(name)
        cfg = 1.0 if name == "flux" else 5.0
        for method in methods:
            try:
                patched = METHODS[method](model, conds)
                run(patched, conds, latent, 1, cfg)  # warm-up: loads the model, compiles kernels
                if torch.cuda.is_available():
                    torch.cuda.reset_peak_memory_stats()
                    base = torch.cuda.memory_allocated()
                seconds = run(patched, conds, latent, steps, cfg)
                peak = (torch.cuda.max_memory_allocated() - base) / 2 ** 30 if torch.cuda.is_available() else 0.0
                cells[method, name] = f"{seconds:.3f} s, {peak:.1f} GiB"
            except Exception as error:  # noqa: BLE001  (a method refused on a family is a cell, not a crash)
                cells[method, name] = "refused" if "Guidance Zoo" in str(error) else f"error: {type(error).__name__}"
                print(f"{method} on {name}: {error}", file=sys.stderr)
            print(f"{method} on {name}: {cells[method, name]}", file=sys.stderr, flush=True)
        del model, conds, latent
        gc.collect()
        mm.soft_empty_cache()
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (tiny configs)"
    print(f"\n{device}, torch {torch.__version__}, {steps} euler steps, cfg 5 (Flux: 1, distilled), batch 1; "
          "cell = seconds per step, peak memory above the loaded model\n")
    print("| method | " + " | ".join(models) + " |")
    print("|---|" + "---|" * len(models))
    for method in methods:
        print(f"| {method} | " + " | ".join(cells.get((method, m), "-") for m in models) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
