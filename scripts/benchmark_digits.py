"""Benchmark every guidance method of the pack on the trained digits model (assets/digits/), measuring its effect.

    .runtime/0.3.75/venv/bin/python scripts/benchmark_digits.py                 # full run: docs/benchmark.md +
    _sheet.png
    .runtime/0.3.75/venv/bin/python scripts/benchmark_digits.py --per-digit 2 --groups 1 --steps 6 --out /tmp/b  # quick
    .runtime/0.3.75/venv/bin/python scripts/benchmark_digits.py --jobs 2 --resume docs/benchmark_runs --minutes 50
        # in parts: each finished setting is kept in docs/benchmark_runs/ (for these weights and options); run the
        # same command again to go on; the table and sheet are written once every setting is done

Per setting, samples `per_digit` images of each digit 0-9 in each of `groups` seed groups (the same noise for every
setting) through the real sampler path, `comfy.sample.sample` (what KSampler calls), euler, normal schedule, on the
model as patched by the method's own node with its node defaults (no per-method tuning). Measures:
- acc / conf: class accuracy and mean probability of the intended digit from an RBF SVC trained on the real digits
  (same 32x32 pixel representation; samples are clipped to the data range first, as the decoder shows them);
- div: mean within-class pairwise L2 distance of the (clipped) 32x32 samples; the real digits' value is listed;
- FD: Frechet distance to the real digits in a 16-dimensional PCA space fitted on the real digits' pixels;
- over / clip: mean overshoot beyond the data range [-0.85, 0.85] per pixel, and the fraction of pixels beyond it;
- NFE: model evaluations per image (samples through apply_model, counted by an APPLY_MODEL wrapper), per step;
- s: wall time of the setting (all groups), this machine's CPU.
Each figure is the mean over seed groups; `+-` is the standard deviation across groups.

Methods are entries in METHODS (baseline CFG scales) plus every model-patch node of the pack (MODEL in, MODEL out,
all other inputs with defaults) found in nodes.NODES, each at the cfg scales in CFG_FOR (default 4 and 12), so nodes
added later are benchmarked without edits; the paper's claim per node (CLAIMS) comes from its METHOD_INFO.
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "harness"))
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import runtime_paths  # noqa: E402

runtime_paths.use_comfyui()

import numpy as np  # noqa: E402
import torch  # noqa: E402

import comfy.patcher_extension  # noqa: E402
import comfy.sample  # noqa: E402

runtime_paths.register_pack()
from guidance_zoo.nodes import NODES  # noqa: E402
from guidance_zoo.nodes import digits_model as dm  # noqa: E402
from guidance_zoo.nodes.methods import by_node_id  # noqa: E402
from setting_cache import SettingCache, file_digest, pack_tiles, unpack_tiles  # noqa: E402

BASELINE_CFGS = (1.0, 2.0, 4.0, 8.0, 12.0)
DEFAULT_CFGS = (4.0, 12.0)
# the cfg scales a node is run at (matched with plain CFG at the same scale); nodes not listed get DEFAULT_CFGS
CFG_FOR = {
    "GuidanceZooPAG": (1.0, 4.0),        # PAG alone (the paper's unconditional use) and on top of CFG 4
    "GuidanceZooSEG": (1.0, 4.0),        # likewise for SEG
    "GuidanceZooRCFG": (2.0, 4.0),       # made for small cfg (paper 1.2) in few-step streams
    "GuidanceZooTPG": (1.0, 4.0),        # the perturbation methods: alone (their unconditional use) and with CFG 4
    "GuidanceZooASAG": (1.0, 4.0),
    "GuidanceZooS2Guidance": (1.0, 4.0),
    "GuidanceZooSLG": (1.0, 4.0),
}
# a second, smaller scale per attention method where the paper or its official code gives one, run at cfg 4
# (ASAG has no released code; TPG's code, S2's paper and PLADIS's port give a single scale)
SECOND_SCALES = {
    "GuidanceZooPAG": ({"scale": 2.8}, "diffusers PAG guider default"),
    "GuidanceZooSEG": ({"scale": 2.8}, "diffusers SEG guider default"),
    "GuidanceZooSLG": ({"scale": 2.8}, "diffusers SLG guider default"),
}
# the paper's claim per node id: CFG's here, the methods' from their METHOD_INFO (nodes/methods.py)
CLAIMS = {"CFG": "higher scale: better class adherence, less diversity, oversaturation at high scales",
          **{node_id: method.claim_text for node_id, method in by_node_id().items() if method.claim}}
GLOBAL_SEED = 1000


# ------------------------------------------------------------------------------------------------ methods
def _schema_defaults(node) -> dict | None:
    """Input defaults of a model-patch node (one MODEL input, MODEL output), or None if it is something else."""
    schema = node.define_schema()
    if len(schema.outputs) != 1 or schema.outputs[0].io_type != "MODEL":
        return None
    values, models = {}, 0
    for inp in schema.inputs:
        if inp.io_type == "MODEL":
            models += 1
            continue
        default = getattr(inp, "default", None)
        if default is None:
            if getattr(inp, "optional", False):
                continue
            return None  # needs a link we cannot give (e.g. a CONDITIONING)
        values[inp.id] = default
    return values if models == 1 else None


def method_nodes() -> list[tuple[str, type, dict]]:
    found = []
    for node in NODES:
        node_id = node.define_schema().node_id
        defaults = _schema_defaults(node)
        if defaults is not None:
            found.append((node_id, node, defaults))
    order = {"GuidanceZooAPG": 0, "GuidanceZooPAG": 1}
    return sorted(found, key=lambda t: (order.get(t[0], 2), t[0]))


def settings(only: list[str] | None = None):
    """(label, node_id or 'CFG', node class or None, node inputs, cfg)."""
    out = [(f"CFG {cfg:g}", "CFG", None, {}, cfg) for cfg in BASELINE_CFGS]
    for node_id, node, defaults in method_nodes():
        short = node_id.removeprefix("GuidanceZoo")
        for cfg in CFG_FOR.get(node_id, DEFAULT_CFGS):
            out.append((f"{short} @ cfg {cfg:g}", node_id, node, defaults, cfg))
        if node_id in SECOND_SCALES:
            change, source = SECOND_SCALES[node_id]
            out.append((f"{short} @ cfg 4, second scale ({source})", node_id, node, {**defaults, **change}, 4.0))
    if only:  # exact labels ('APG @ cfg 12', 'CFG 4') or a method name for all its settings ('APG')
        wanted = [o.lower() for o in only]
        out = [s for s in out if s[0].lower() in wanted or s[0].lower().split(" @ ")[0] in wanted]
    return out


def patched(model, node, inputs: dict):
    if node is None:
        return model
    result = node.execute(model, **inputs)
    return result.result[0] if hasattr(result, "result") else result[0]


class Counter:
    def __init__(self):
        self.samples = 0

    def __call__(self, executor, x, *args, **kwargs):
        self.samples += x.shape[0]
        return executor(x, *args, **kwargs)


def sample(model, context, labels, seed: int, cfg: float, steps: int) -> tuple[torch.Tensor, int]:
    """Pixels [N, 32, 32] (unclipped) and model evaluations (samples through apply_model)."""
    counter = Counter()
    model = model.clone()
    model.add_wrapper_with_key(comfy.patcher_extension.WrappersMP.APPLY_MODEL, "gz_digits_bench", counter)
    n = len(labels)
    latent = torch.zeros((n,) + dm.LATENT_SHAPE)
    noise = comfy.sample.prepare_noise(latent, seed)
    positive = [[context[labels].clone(), {}]]
    negative = dm.conditioning(context, dm.NULL)
    out = comfy.sample.sample(model, noise, steps, cfg, "euler", "normal", positive, negative, latent,
                              denoise=1.0, disable_pbar=True, seed=seed)
    return dm.latent_to_pixels(out), counter.samples


# ------------------------------------------------------------------------------------------------ metrics
class Judge:
    def __init__(self):
        from sklearn.decomposition import PCA
        from sklearn.model_selection import cross_val_score
        from sklearn.svm import SVC
        images, labels = dm.load_digits()
        self.real = dm.images_to_pixels(images).reshape(len(labels), -1).numpy().astype(np.float64)
        self.labels = labels.numpy()
        self.svc = dm.classifier()
        self.cv = float(np.mean(cross_val_score(SVC(C=10.0, gamma="scale"), self.real, self.labels, cv=5)))
        self.pca = PCA(16, random_state=0).fit(self.real)
        feats = self.pca.transform(self.real)
        self.mu, self.cov = feats.mean(0), np.cov(feats, rowvar=False)
        self.real_div = self.diversity(self.real, self.labels)

    @staticmethod
    def diversity(x: np.ndarray, labels: np.ndarray) -> float:
        values = []
        for d in np.unique(labels):
            xs = x[labels == d]
            if len(xs) < 2:
                continue
            dist = np.sqrt(((xs[:, None] - xs[None]) ** 2).sum(-1))
            values.append(dist[np.triu_indices(len(xs), 1)].mean())
        return float(np.mean(values))

    def frechet(self, x: np.ndarray) -> float:
        from scipy import linalg
        f = self.pca.transform(x)
        mu, cov = f.mean(0), np.cov(f, rowvar=False)
        covmean = linalg.sqrtm(self.cov @ cov)
        covmean = covmean.real if np.iscomplexobj(covmean) else covmean
        return float(((mu - self.mu) ** 2).sum() + np.trace(self.cov + cov - 2 * covmean))

    def measure(self, pixels: torch.Tensor, labels: np.ndarray) -> dict:
        raw = pixels.reshape(len(labels), -1).double()
        over = (raw.abs() - dm.RANGE).clamp(min=0)
        x = raw.clamp(-dm.RANGE, dm.RANGE).numpy()
        proba = self.svc.predict_proba(x)
        pred = self.svc.classes_[proba.argmax(1)]
        return {"acc": float((pred == labels).mean()),
                "conf": float(proba[np.arange(len(labels)), np.searchsorted(self.svc.classes_, labels)].mean()),
                "div": self.diversity(x, labels), "fd": self.frechet(x),
                "over": float(over.mean()), "clip": float((over > 0).double().mean())}


# ------------------------------------------------------------------------------------------------ output
KEYS = ("acc", "conf", "div", "fd", "over", "clip")


def fmt_row(row: dict, groups: int) -> list[str]:
    cells = []
    for key, digits in zip(KEYS, (3, 3, 2, 2, 4, 3)):
        mean, sd = row[key]
        cells.append(f"{mean:.{digits}f}" + (f" ±{sd:.{digits}f}" if groups > 1 else ""))
    return cells


def sheet_tiles(pixels: torch.Tensor, labels: np.ndarray, per_row: int = 2) -> np.ndarray:
    """The sheet's tiles of a setting: for each digit 0-9 its first `per_row` samples, uint8 [10 * per_row, S, S]."""
    idx = [i for d in range(10) for i in np.nonzero(labels == d)[0][:per_row]]
    return (dm.pixels_to_unit(pixels[idx]).numpy() * 255).round().astype(np.uint8)


def sheet(rows, path: str, cell: int = 3):
    """One row per setting (label, sheet_tiles): for each digit 0-9, its first samples of seed group 0."""
    from PIL import Image, ImageDraw, ImageFont
    try:
        font = ImageFont.load_default(size=13)
    except TypeError:
        font = ImageFont.load_default()
    px = dm.IMAGE_SIZE * cell
    per_row = len(rows[0][1]) // 10 if rows else 1  # the tiles per digit, as sheet_tiles took them
    label_w, pad = 230, 4
    w = label_w + 10 * (per_row * (px + 1) + pad)
    h = 24 + len(rows) * (px + pad)
    img = Image.new("RGB", (w, h), "white")
    draw = ImageDraw.Draw(img)
    draw.text((6, 4), "digits model, same noise per column; euler 20 steps; row = setting (node defaults)",
              fill=(60, 60, 60), font=font)
    for r, (label, tiles) in enumerate(rows):
        y = 24 + r * (px + pad)
        draw.text((6, y + px // 2 - 7), label, fill="black", font=font)
        for i, tile in enumerate(tiles):
            x = label_w + (i // per_row) * (per_row * (px + 1) + pad) + (i % per_row) * (px + 1)
            img.paste(Image.fromarray(tile, "L").resize((px, px), Image.NEAREST).convert("RGB"), (x, y))
    img.save(path)


_WORKER: dict = {}


def _start_worker(args) -> None:
    """Load the judge, the model, the settings and the resume cache once per process."""
    torch.set_num_threads(args.threads)
    model, context = dm.load_patcher(args.weights)
    cache = None
    if args.resume:
        run_key = {"weights": file_digest(dm.weights_path(args.weights)), "per_digit": args.per_digit,
                   "groups": args.groups, "steps": args.steps}
        cache = SettingCache(args.resume, run_key)
    _WORKER.update(args=args, judge=Judge(), model=model, context=context, settings=settings(args.only), cache=cache)


def run_setting(index: int) -> dict:
    """One setting's outcome: its table row, the sheet's tiles, or the message of a node that stopped its own run;
    from the resume cache when it holds it; 'pending' when the run's --minutes are up before it starts."""
    args, cache = _WORKER["args"], _WORKER["cache"]
    label, node_id, node, inputs, cfg = _WORKER["settings"][index]
    key = {"label": label, "node_id": node_id, "inputs": inputs, "cfg": cfg}
    stored = cache.get(label, key) if cache else None
    if stored is not None:
        print(f"{label:32s} (from {args.resume})", flush=True)
        return {**stored, "tiles": unpack_tiles(stored["tiles"])}
    if args.deadline is not None and time.time() > args.deadline:
        return {"pending": True}
    outcome = measure_setting(label, node_id, node, inputs, cfg)
    if cache:
        cache.put(label, key, {**outcome, "tiles": pack_tiles(outcome["tiles"])})
    return outcome


def measure_setting(label: str, node_id: str, node, inputs: dict, cfg: float) -> dict:
    """Sample one setting in every seed group and judge it."""
    args, judge = _WORKER["args"], _WORKER["judge"]
    labels = np.repeat(np.arange(10), args.per_digit)
    m = patched(_WORKER["model"], node, inputs)
    per_group, nfe, t0, tiles = [], 0, time.time(), None
    try:
        for g in range(args.groups):
            pixels, calls = sample(m, _WORKER["context"], torch.tensor(labels), GLOBAL_SEED + g, cfg, args.steps)
            nfe += calls
            per_group.append(judge.measure(pixels, labels))
            if g == 0:
                tiles = sheet_tiles(pixels, labels)
    except RuntimeError as error:  # a node that stops its own run (RCFG blowing up) is a finding, not a crash
        print(f"{label:32s} stopped: {error}", flush=True)
        return {"row": None, "tiles": None, "stopped": f"- {label}: the node stopped the run: "
                                                       f"{str(error).split('. ')[0]}."}
    seconds = time.time() - t0
    row = {k: (float(np.mean([p[k] for p in per_group])), float(np.std([p[k] for p in per_group]))) for k in KEYS}
    summary = node.define_schema().description.split(". ")[0] if node is not None else ""
    row.update(label=label, node_id=node_id, inputs=inputs, cfg=cfg, seconds=seconds, summary=summary,
               nfe=nfe / (args.groups * len(labels)))
    print(f"{label:32s} " + " ".join(fmt_row(row, args.groups)) + f"  nfe {row['nfe']:.0f}  {seconds:.1f} s",
          flush=True)
    return {"row": row, "tiles": tiles, "stopped": None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per-digit", type=int, default=20)
    parser.add_argument("--groups", type=int, default=3, help="seed groups (same seeds for every setting)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--weights", default=dm.DEFAULT_WEIGHTS)
    parser.add_argument("--only", nargs="*", help="only settings whose label contains one of these")
    parser.add_argument("--out", default=os.path.join(ROOT, "docs"), help="folder for benchmark.md and the sheet")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--jobs", type=int, default=1, help="settings run at once, one process each")
    parser.add_argument("--resume", metavar="DIR", help="keep each finished setting in DIR and take the ones already "
                        "there (same weights and sampling options): a run can stop and continue later")
    parser.add_argument("--minutes", type=float, help="start no setting after this many minutes (with --resume: "
                        "run again to go on); the table is written once every setting is done")
    args = parser.parse_args(argv)
    args.deadline = time.time() + 60 * args.minutes if args.minutes is not None else None

    t_all = time.time()
    count = len(settings(args.only))
    if args.jobs > 1:
        import multiprocessing
        with multiprocessing.get_context("spawn").Pool(args.jobs, _start_worker, (args,)) as pool:
            outcomes = list(pool.imap(run_setting, range(count)))
    else:
        _start_worker(args)
        outcomes = [run_setting(i) for i in range(count)]
    pending = sum(1 for outcome in outcomes if outcome.get("pending"))
    if pending:
        print(f"{count - pending} of {count} settings done{f' (kept in {args.resume})' if args.resume else ''}; "
              "run again with the same options to go on; no table written yet")
        return 0
    judge = _WORKER["judge"] if _WORKER else Judge()
    results = [outcome["row"] for outcome in outcomes if outcome["row"] is not None]
    sheet_rows = [(outcome["row"]["label"], outcome["tiles"]) for outcome in outcomes if outcome["row"] is not None]
    stopped = [outcome["stopped"] for outcome in outcomes if outcome["stopped"]]

    os.makedirs(args.out, exist_ok=True)
    sheet(sheet_rows, os.path.join(args.out, "benchmark_sheet.png"))
    write_markdown(results, judge, args, time.time() - t_all)
    if stopped:
        with open(os.path.join(args.out, "benchmark.md"), "a", encoding="utf-8") as md:
            md.write("\nSettings whose node stopped the run (no row above):\n" + "\n".join(stopped) + "\n")
    print(f"wrote {os.path.join(args.out, 'benchmark.md')} and benchmark_sheet.png in {time.time() - t_all:.0f} s")
    return 0


def verdict(row: dict, base: dict, cfg1: dict) -> str:
    """Plain reading of the row against plain CFG at the same scale (and CFG 1 for PAG alone)."""
    ref = base.get(row["cfg"])
    if row["node_id"] == "CFG" or ref is None:
        return ""
    notes = []
    for key, better, name in (("fd", -1, "FD"), ("over", -1, "overshoot"), ("conf", 1, "confidence"),
                              ("div", 1, "diversity")):
        delta = row[key][0] - ref[key][0]
        noise = 2 * max(row[key][1], ref[key][1], 1e-4)
        if abs(delta) > noise:
            notes.append(f"{name} {'better' if delta * better > 0 else 'worse'} ({ref[key][0]:.3g} -> "
                         f"{row[key][0]:.3g})")
    return "; ".join(notes) if notes else "no difference beyond seed noise"


def write_markdown(results, judge, args, total):
    base = {r["cfg"]: r for r in results if r["node_id"] == "CFG"}
    lines = [
        "# Guidance methods on the trained digits model",
        "",
        f"`scripts/benchmark_digits.py` (this file and `benchmark_sheet.png` are its output; {total:.0f} s on this "
        "machine's CPU). Model: `assets/digits/digits_unet.safetensors` (ComfyUI's SD1.5 UNet class, 1.13M params, "
        "trained by `scripts/train_digits.py` on scikit-learn's digits at 32x32, class-conditional with a null "
        "context). Sampling: `comfy.sample.sample` (KSampler's path), euler, normal schedule, "
        f"{args.steps} steps, {args.per_digit} samples per digit x {args.groups} seed groups; every setting uses the "
        "same noise. Each method is its node with the node's defaults (no per-method tuning), compared with plain "
        "CFG at the same cfg (our APG is already matched: `D_c + (cfg - 1) G'`, equal to CFG at `eta 1`, no clamp, "
        "no momentum).",
        "",
        f"acc/conf: RBF SVC on the real digits' pixels (5-fold CV accuracy {judge.cv:.3f}), on samples clipped to the "
        f"data range. div: mean within-class pairwise L2 distance (real digits: {judge.real_div:.2f}). FD: Frechet "
        "distance to the real digits in a 16-dim PCA of the real pixels (lower is closer). over: mean overshoot "
        "beyond [-0.85, 0.85] per pixel; clip: fraction of pixels beyond it (real digits: 0 and 0). NFE: model "
        "evaluations per image. `±`: standard deviation over seed groups; the verdict counts a difference only "
        "beyond twice that.",
        "",
        "| setting | acc | conf | div | FD | over | clip | NFE | s | paper's claim | measured vs CFG at same cfg |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    cfg1 = base.get(1.0)
    for row in results:
        claim = CLAIMS.get(row["node_id"], row.get("summary", "")) if row["node_id"] != "CFG" else \
            (CLAIMS["CFG"] if row["cfg"] == BASELINE_CFGS[0] else "")
        settings_text = ", ".join(f"{k} {v!r}" if isinstance(v, str) else f"{k} {v:g}"
                                  for k, v in row["inputs"].items())
        label = row["label"] + (f" ({settings_text})" if settings_text else "")
        lines.append(f"| {label} | " + " | ".join(fmt_row(row, args.groups)) +
                     f" | {row['nfe']:.0f} | {row['seconds']:.1f} | {claim} | {verdict(row, base, cfg1)} |")
    lines.append("")
    notes = os.path.join(args.out, "benchmark_notes.md")  # hand-written reading of a run, kept across reruns
    if os.path.isfile(notes):
        lines += ["", open(notes, encoding="utf-8").read().rstrip(), ""]
    open(os.path.join(args.out, "benchmark.md"), "w", encoding="utf-8").write("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
