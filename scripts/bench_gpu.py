"""GPU benchmark: full-size random-weight SDXL, Flux and Wan 2.1 1.3B built on the GPU from ComfyUI's own classes (no
downloads), every method node of the pack at its node defaults and the core nodes that do the same job, seconds per
step, time against plain CFG, model evaluations per step and peak VRAM; prints a markdown table last. Run through
scripts/bench_gpu.sh (see its header).

    python scripts/bench_gpu.py [--steps 8] [--models sdxl,flux,wan] [--methods CFG,PAG,...] [--budget 420]
                                [--table FILE] [--tiny]

--tiny builds the tests' tiny configs on the CPU instead (2 steps): what the test suite runs, so the script cannot rot
without a GPU. Rows: CFG, our method nodes (the README's order; inputs they cannot default are built as in
scripts/bench_tiny.py: a second prompt, a style latent, a second model of the same size and another seed) and the
core peers next to ours. A cell is "s/step (time / CFG's), evaluations/step, peak GiB above the loaded model(s)".
--budget: seconds for the whole run, shared out over the models still to run; rows past a model's share are
"skipped (time)", so a lent device's limited time always ends with a table (written to --table after each model).
"""
import argparse
import gc
import importlib
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
from bench_tiny import METHODS as OURS, node_inputs  # noqa: E402

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
# core peer row: (comfy_extras module, class, inputs, the row of ours it follows); one this ComfyUI lacks is left out
PEERS = {
    "core APG": ("nodes_apg", "APG", dict(eta=1.0, norm_threshold=5.0, momentum=-0.5), "APG"),
    "core PAG": ("nodes_pag", "PerturbedAttentionGuidance", dict(scale=3.0), "PAG"),
    "core SLG": ("nodes_slg", "SkipLayerGuidanceDiT", dict(scale=3.0, start_percent=0.01, end_percent=0.15,
                                                           double_layers="7, 8, 9", single_layers="7, 8, 9"), "SLG"),
    "core TCFG": ("nodes_tcfg", "TCFG", {}, "TCFG"),
    "core RescaleCFG": ("nodes_model_advanced", "RescaleCFG", dict(multiplier=0.7), "Rescale CFG"),
    "core CFGZeroStar": ("nodes_cfg", "CFGZeroStar", {}, "CFG-Zero*"),
    "core NAG": ("nodes_nag", "NAGuidance", dict(nag_scale=5.0, nag_alpha=0.5, nag_tau=1.5), "NAG"),
}


def core(name: str):
    """model -> the core peer applied with its inputs; None where this ComfyUI lacks it."""
    module, cls, kwargs, _ = PEERS[name]
    try:
        node = getattr(importlib.import_module(f"comfy_extras.{module}"), cls)
    except (ImportError, AttributeError):
        return None
    if hasattr(node, "execute"):
        return lambda m: node.execute(m, **kwargs)[0]
    return lambda m: getattr(node(), node.FUNCTION)(m, **kwargs)[0]  # a legacy (V1) node


def row_names() -> list[str]:
    """CFG, ours in the README's order, each core peer this ComfyUI has right after the row of ours it matches."""
    names = []
    for name in OURS:
        names += [name] + [p for p, spec in PEERS.items() if spec[3] == name and core(p)]
    return names


class Setup:
    """One model at full size on the GPU (or its tiny config on the CPU), its prompts, latent and linked inputs."""

    def __init__(self, name: str):
        self.name, self.second, self.second_counter = name, None, None
        self.g = torch.Generator().manual_seed(1)
        self.model = self.build(seed=0)
        self.conds = (self.prompt(), self.prompt())
        self.latent = torch.zeros((1,) + MODELS[name][2]) if not TINY else tm.latent(MODELS[name][7])
        self.style = {"samples": torch.randn(self.latent.shape, generator=self.g)}
        self.other_prompt = self.prompt()

    def build(self, seed: int):
        config_cls, config, _, _, _, _, dtype, family = MODELS[self.name]
        if TINY:
            return tm.make_model(family, seed=seed)
        device = mm.get_torch_device()
        config = config_cls(tm.unet_config_for(family, **config))
        config.set_inference_dtype(dtype, None)
        with torch.device(device):
            base = config.get_model({}, "", device=device)
        torch.manual_seed(seed)
        for p in base.diffusion_model.parameters():
            p.data.normal_(0, 0.02)
        return comfy.model_patcher.ModelPatcher(base, load_device=device, offload_device=device)

    def prompt(self):
        _, _, _, width, pooled, tokens, _, family = MODELS[self.name]
        if TINY:
            return tm.make_conds(family, seed=int(torch.randint(100, (1,), generator=self.g)))[0]
        extra = {"pooled_output": torch.randn(1, pooled, generator=self.g) if pooled else None}
        if self.name == "flux":
            extra["guidance"] = 3.5
        return [[torch.randn(1, tokens, width, generator=self.g), extra]]

    def value(self, node_input):
        """A linked input our node cannot default (bench_tiny.node_inputs asks)."""
        if node_input.io_type == "MODEL" and self.second is None:
            self.second, self.second_counter = tm.counted(self.build(seed=1))
        return {"CONDITIONING": self.other_prompt, "LATENT": self.style, "MODEL": self.second}.get(node_input.io_type)

    def patched(self, row: str, model):
        if row == "CFG":
            return model
        if row in PEERS:
            return core(row)(model)
        node = OURS[row]
        return node.execute(**node_inputs(node, model, self)).result[0]

    def run(self, model, steps: int, cfg: float) -> float:
        noise = comfy.sample.prepare_noise(self.latent, 0)
        start = time.perf_counter()
        comfy.sample.sample(model, noise, steps, cfg, "euler", "normal", self.conds[0], self.conds[1], self.latent,
                            denoise=1.0, disable_pbar=True, seed=0)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        return (time.perf_counter() - start) / steps


def measure(setup: Setup, row: str, steps: int, cfg: float) -> tuple[float, float, float]:
    """(seconds per step, evaluations per step, peak GiB above what was allocated before) of one row."""
    model, counter = tm.counted(setup.model)
    patched = setup.patched(row, model)
    setup.run(patched, 1, cfg)  # warm-up: loads the model(s), picks kernels
    counters = [c for c in (counter, setup.second_counter) if c is not None]
    for c in counters:
        c.samples = 0
    base = 0
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
    seconds = setup.run(patched, steps, cfg)
    peak = (torch.cuda.max_memory_allocated() - base) / 2 ** 30 if torch.cuda.is_available() else 0.0
    return seconds, sum(c.samples for c in counters) / steps, peak


def bench_model(name: str, rows: list[str], steps: int, deadline: float) -> dict:
    """{row: cell} for one model; rows past the deadline are skipped."""
    setup, cells, cfg_seconds = Setup(name), {}, None
    cfg = 1.0 if name == "flux" else 5.0
    for row in rows:
        if time.monotonic() > deadline:
            cells[row] = "skipped (time)"
            continue
        try:
            seconds, evals, peak = measure(setup, row, steps, cfg)
            cfg_seconds = cfg_seconds or (seconds if row == "CFG" else None)
            ratio = f" ({seconds / cfg_seconds:.2f}x)" if cfg_seconds else ""
            cells[row] = f"{seconds:.3f} s{ratio}, {evals:g} evals, {peak:.1f} GiB"
        except Exception as error:  # noqa: BLE001  (a method refused on a family is a cell, not a crash)
            cells[row] = "refused" if "Guidance Zoo" in str(error) else f"error: {type(error).__name__}"
            print(f"{row} on {name}: {str(error)[:300]}", file=sys.stderr)
        print(f"{row} on {name}: {cells[row]}", file=sys.stderr, flush=True)
    del setup
    mm.unload_all_models()
    gc.collect()
    mm.soft_empty_cache()
    return cells


def table(cells: dict, models: list[str], rows: list[str], steps: int) -> str:
    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU (tiny configs)"
    lines = [f"{device}, torch {torch.__version__}, {steps} euler steps, cfg 5 (Flux: 1, distilled), batch 1; cell = "
             "seconds per step (time / CFG's), model evaluations per step, peak memory above the loaded model(s)", "",
             "| method | " + " | ".join(models) + " |", "|---|" + "---|" * len(models)]
    lines += [f"| {row} | " + " | ".join(cells.get((row, m), "-") for m in models) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--methods", help="rows, comma-separated (default: all)")
    parser.add_argument("--budget", type=float, default=420.0)
    parser.add_argument("--table", help="also write the table here after each model")
    parser.add_argument("--tiny", action="store_true")
    opts = parser.parse_args()
    steps, models, rows = 2 if TINY else opts.steps, opts.models.split(","), row_names()
    if opts.methods:
        rows = [r for r in opts.methods.split(",") if r in rows]
    cells, start = {}, time.monotonic()
    for i, name in enumerate(models):
        deadline = time.monotonic() + (opts.budget - (time.monotonic() - start)) / (len(models) - i)
        cells.update({(row, name): cell for row, cell in bench_model(name, rows, steps, deadline).items()})
        if opts.table:
            with open(opts.table, "w") as out:
                out.write(table(cells, models, rows, steps))
    print("\n" + table(cells, models, rows, steps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
