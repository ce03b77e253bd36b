"""Peak memory and time of the two-model methods against a one-model run, each setting in a fresh process.

Usage: .runtime/0.3.75/venv/bin/python scripts/bench_two_model.py [--steps 4]
The model is an SD1.5 UNet of ComfyUI's smallest detectable size (model_channels 320, one level: 25.8M params,
103 MB in fp32) with random weights, sampled on the CPU at a 4x32x32 latent through comfy.sample.sample. Peak memory
is the process's maximum resident set size (resource.getrusage ru_maxrss) minus the resident size measured before
the first model was built (imports, torch), so it counts the weights, their patches/backups and activations.
"""
import argparse
import os
import resource
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETTINGS = {
    "one model, CFG": "one",
    "Unconditional Prior, separate base checkpoint": "separate",
    "Unconditional Prior, base = model without its LoRA (weight hook)": "variant",
    "RLG, base = model without its LoRA (weight hook)": "rlg_variant",
    "Personalization, separate pretrained checkpoint (merge-patch hook)": "personalization_separate",
}


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(setting: str, steps: int) -> None:
    sys.path.insert(0, os.path.join(ROOT, "harness"))
    import runtime_paths
    runtime_paths.use_comfyui()
    runtime_paths.register_pack()
    import torch
    import comfy.model_management  # noqa: F401  (after the CPU flag)
    import comfy.model_patcher
    import comfy.sample
    import comfy.supported_models as sm
    import comfy.weight_adapter
    from random_init import init_random_
    from guidance_zoo.nodes.personalization import PersonalizationGuidance
    from guidance_zoo.nodes.rlg import RLG
    from guidance_zoo.nodes.unconditional_prior import UnconditionalPrior
    import standins

    def build(seed):
        config = sm.SD15(dict(standins.SD15_MIN))
        config.set_inference_dtype(torch.float32, None)
        model = config.get_model({}, "", device=torch.device("cpu"))
        init_random_(model.diffusion_model, seed)
        return comfy.model_patcher.ModelPatcher(model, torch.device("cpu"), torch.device("cpu"))

    def lora(model):  # rank-8 LoRA on every attention projection
        g, sd, patches = torch.Generator().manual_seed(9), model.model_state_dict(), {}
        for key in sd:
            if any(f".{p}.weight" in key for p in ("to_q", "to_k", "to_v")) or key.endswith("to_out.0.weight"):
                rows, cols = sd[key].shape
                up, down = 0.01 * torch.randn(rows, 8, generator=g), 0.01 * torch.randn(8, cols, generator=g)
                patches[key] = comfy.weight_adapter.LoRAAdapter(set(), (up, down, 8.0, None, None, None))
        clone = model.clone()
        clone.add_patches(patches, 1.0)
        return clone

    baseline = rss_mb()
    main = build(0)
    if setting == "one":
        model = main
    elif setting == "separate":
        model = UnconditionalPrior.execute(main, build(1)).result[0]
    elif setting == "variant":
        model = UnconditionalPrior.execute(lora(main), main).result[0]
    elif setting == "rlg_variant":
        model = RLG.execute(lora(main), main, 1.6, 0).result[0]
    else:
        model = PersonalizationGuidance.execute(main, build(1), 0.5).result[0]
    ctx = torch.randn(1, 77, 768, generator=torch.Generator().manual_seed(1))
    positive, negative = [[ctx, {}]], [[torch.zeros_like(ctx), {}]]
    noise = torch.randn(1, 4, 32, 32, generator=torch.Generator().manual_seed(2))
    start = time.perf_counter()
    comfy.sample.sample(model, noise, steps, 6.0, "euler", "normal", positive, negative, torch.zeros_like(noise),
                        disable_pbar=True, seed=0)
    seconds = (time.perf_counter() - start) / steps
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{peak - baseline:.0f} {seconds * 1000:.0f}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--child")
    opts = parser.parse_args()
    if opts.child:
        child(opts.child, opts.steps)
        return
    print("| setting | peak RSS above imports (MB) | ms per step |")
    print("|---|---|---|")
    for name, setting in SETTINGS.items():
        out = subprocess.run([sys.executable, __file__, "--child", setting, "--steps", str(opts.steps)],
                             capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        peak, ms = out.stdout.split()[-2:]
        print(f"| {name} | {peak} | {ms} |")


if __name__ == "__main__":
    main()
