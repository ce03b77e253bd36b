"""Train the digits model (nodes/digits_model.py) on scikit-learn's bundled digits, deterministically, on the CPU.

    .runtime/0.3.75/venv/bin/python scripts/train_digits.py [--steps N] [--out assets/digits/digits_unet.safetensors]

ComfyUI's own SD15 UNet class with a tiny config, trained through BaseModel.apply_model, so the training uses
ComfyUI's eps parameterisation and its 1000-step sigma schedule exactly as the samplers will. Class-conditional with
a learned context per digit and a learned null context that replaces it 15% of the time (what CFG needs).
AdamW, cosine decay, gradient clipping, EMA of the weights (the EMA is saved, with the contexts, as safetensors).
Writes a training log next to the weights (loss every --log-every steps, EMA-smoothed).

The shipped weights (assets/digits/) come from one job on a 2-core CPU (torch 2.14.1, 2 threads, 81 min), the 3400-step
defaults' schedule stretched to 3600 steps and stopped at 3200 (the step that fit 90 minutes), with smaller shifts and
rotations than the defaults' (which cap a classifier's accuracy on the augmented digits near 0.95):
    .runtime/0.3.75/venv/bin/python scripts/train_digits.py --steps 3600 --until 3200 --threads 2 --shift 1 \
        --degrees 4 --flush-denormal
The loss weights high noise levels (--high-sigma-weight 16): an eps model's x0 error at sigma 14.6 is its eps error
times sigma^2, and an unweighted first model left some noise seeds that never turned into digits. Shifts and small
rotations of the digits (--shift, --degrees) keep the 32x32 model from memorising 1797 images.
"""
import argparse
import math
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "harness"))
sys.path.insert(0, os.path.join(ROOT, "nodes"))

import runtime_paths  # noqa: E402

runtime_paths.use_comfyui()  # CPU, use_pytorch_cross_attention

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402

import digits_model as dm  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=3400)
    parser.add_argument("--batch", type=int, default=96)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--ema", type=float, default=0.998)
    parser.add_argument("--p-null", type=float, default=0.15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--log-every", type=int, default=200)
    parser.add_argument("--high-sigma-weight", type=float, default=16.0,
                        help="weight the eps loss by 1 + min(sigma^2, W) (normalised per batch): W > 0 stresses "
                             "high noise levels, where an eps model's x0 error is sigma^2 times its eps error")
    parser.add_argument("--init", help="start from this weights file (EMA and contexts) instead of fresh weights")
    parser.add_argument("--warmup", type=int, default=100)
    parser.add_argument("--save-every", type=int, default=400,
                        help="also save the EMA weights every N steps, as <out>.step<N>.safetensors")
    parser.add_argument("--shift", type=float, default=2.0, help="augmentation: random shift up to N pixels")
    parser.add_argument("--degrees", type=float, default=8.0, help="augmentation: random rotation up to N degrees")
    parser.add_argument("--flush-denormal", action="store_true",
                        help="treat denormal floats as 0 (about 20%% faster steps on an AVX2 CPU, same loss to 4 "
                             "digits over the first steps; the shipped weights were made with it)")
    parser.add_argument("--until", type=int,
                        help="stop after this many steps of the --steps schedule and save those EMA weights as --out "
                             "(the same weights as that step's --save-every checkpoint)")
    parser.add_argument("--out", default=dm.weights_path())
    args = parser.parse_args(argv)
    last = min(args.steps, args.until or args.steps)

    torch.set_num_threads(args.threads)
    torch.set_flush_denormal(args.flush_denormal)
    torch.manual_seed(args.seed)
    images, labels = dm.load_digits()
    pixels_all = dm.images_to_pixels(images)
    n = len(labels)

    model = dm.build_base_model()
    net = model.diffusion_model
    dm.init_weights_(net, args.seed)
    net.train()
    for p in net.parameters():
        p.requires_grad_(True)
    g = torch.Generator().manual_seed(args.seed)
    context = torch.nn.Parameter(torch.randn(11, dm.CONTEXT_TOKENS, dm.CONTEXT_DIM, generator=g))
    if args.init:
        state, ctx0 = dm.load_state(args.init)
        net.load_state_dict(state)
        with torch.no_grad():
            context.copy_(ctx0)
    params = list(net.parameters()) + [context]
    n_params = sum(p.numel() for p in net.parameters())
    opt = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    warmup = max(1, args.warmup)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * s / args.steps))))
    ema = {k: v.detach().clone() for k, v in net.state_dict().items()}
    ema_ctx = context.detach().clone()
    sigmas = model.model_sampling.sigmas.float()

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    log_path = os.path.join(os.path.dirname(os.path.abspath(args.out)), "train_log.txt")
    log = open(log_path, "a" if args.init else "w", encoding="utf-8")  # a second stage appends

    def say(text):
        print(text, flush=True)
        log.write(text + "\n")
        log.flush()

    say(f"digits UNet: comfy.supported_models.SD15, unet_config {dm.UNET_CONFIG}")
    say(f"params {n_params} (+ context {context.numel()}); data {n} digits as 4x16x16 (32x32 unshuffled, shift "
        f"{args.shift} px, "
        f"rotation {args.degrees} deg) in "
        f"[-{dm.RANGE}, {dm.RANGE}]; steps {args.steps} batch {args.batch} lr {args.lr} ema {args.ema} "
        f"p_null {args.p_null} seed {args.seed} threads {args.threads} high_sigma_weight {args.high_sigma_weight} "
        f"warmup {args.warmup} init {args.init}" + (" flush_denormal" if args.flush_denormal else "")
        + (f" until {last}" if last < args.steps else ""))
    def save(step, path):
        state = {k: v.contiguous() for k, v in ema.items()}
        state[dm.CONTEXT_KEY] = ema_ctx.contiguous()
        save_file(state, path, metadata={"format": "pt", "model": "guidance_zoo digits SD15-class UNet",
                                             "steps": str(step), "seed": str(args.seed)})

    say("step  loss(smoothed)  loss(window mean)  lr  elapsed_s")
    t0 = time.time()
    smooth, window = None, []
    for step in range(1, last + 1):
        idx = torch.randint(0, n, (args.batch,), generator=g)
        pixels = pixels_all[idx]
        if args.shift > 0 or args.degrees > 0:
            pixels = dm.augment(pixels, g, args.shift, args.degrees)
        x0 = dm.pixels_to_x0(pixels)
        cls = labels[idx].clone()
        cls[torch.rand(args.batch, generator=g) < args.p_null] = dm.NULL
        t = torch.randint(0, len(sigmas), (args.batch,), generator=g)
        sigma = sigmas[t]
        eps = torch.randn(x0.shape, generator=g)
        x = x0 + sigma[:, None, None, None] * eps
        denoised = model.apply_model(x, sigma, c_crossattn=context[cls])
        eps_hat = (x - denoised) / sigma[:, None, None, None]
        per_sample = (eps_hat - eps).pow(2).mean(dim=(1, 2, 3))
        if args.high_sigma_weight > 0:
            weight = 1 + sigma.pow(2).clamp(max=args.high_sigma_weight)
            loss = (per_sample * weight).sum() / weight.sum()
        else:
            loss = per_sample.mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        sched.step()
        decay = min(args.ema, (1 + step) / (10 + step))
        with torch.no_grad():
            for k, v in net.state_dict().items():
                if v.dtype.is_floating_point:
                    ema[k].mul_(decay).add_(v.detach(), alpha=1 - decay)
                else:
                    ema[k].copy_(v)
            ema_ctx.mul_(decay).add_(context.detach(), alpha=1 - decay)
        value = loss.item()
        smooth = value if smooth is None else 0.98 * smooth + 0.02 * value
        window.append(value)
        if step % args.log_every == 0 or step == last:
            say(f"{step:6d}  {smooth:.4f}  {sum(window) / len(window):.4f}  {sched.get_last_lr()[0]:.2e}  "
                f"{time.time() - t0:.0f}")
            window = []
            if step % args.save_every == 0 and step < last:
                save(step, f"{os.path.splitext(args.out)[0]}.step{step}.safetensors")
    save(last, args.out)
    say(f"saved EMA weights to {os.path.relpath(args.out, ROOT)} "
        f"({os.path.getsize(args.out) / 1e6:.1f} MB) after {time.time() - t0:.0f} s")
    log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
