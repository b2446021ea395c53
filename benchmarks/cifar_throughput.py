"""CIFAR-10 training throughput (images/s per training step) for fm, meanflow and mmf.

Runs the real training step (mmftraj.training.Trainer.train_step: objective with its JVP, backward,
clipping, AdamW, EMA) on the configs/cifar.yaml setup — DDPM++ U-Net, bf16 autocast, channels_last,
batch 128, augmentation on the CPU — with synthetic CIFAR-shaped uint8 data (no dataset needed),
or real images with --data-dir (CIFAR-10's batches or class folders). For `mmf` the step is placed
mid-curriculum (0 < λ < 1), where gradients flow through du/dt; `meanflow` is λ ≡ 0 and `fm` has
no JVP at all.

    # GPU (the numbers to record)
    python benchmarks/cifar_throughput.py --device cuda --compile --out runs/bench/cifar_h100.json
    # CPU smoke test of the same code path
    python benchmarks/cifar_throughput.py --preset tiny --device cpu --batch 8 --iters 3 --out /tmp/t.json
    # a short training log (metrics.csv with images/s, loss, λ) on synthetic data, or real images
    python benchmarks/cifar_throughput.py --device cuda --compile --train-steps 2000 --out runs/bench/log.json
    python benchmarks/cifar_throughput.py --device cuda --train-steps 400 --variants mmf \
        --data-dir shards/cifar-gpu --out runs/bench/real_log.json   # see benchmarks/cifar_gpu_real.sh

Reference: the official PyTorch MeanFlow CIFAR-10 code trains at ≈ 0.21 s per 128-image step per
H200 with torch.compile (≈ 610 images/s per GPU).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmftraj.experiments.cifar_step import PRESET_OVERRIDES, build, dataset, make_config, split_variant  # noqa: E402


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--preset", choices=sorted(PRESET_OVERRIDES), default="ddpmpp")
    p.add_argument("--variants", nargs="+", default=["fm", "meanflow", "mmf"],
                   help="objective names, each optionally with overrides: mmf@objective.jvp=exact,train.tf32=true")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--compile", action="store_true", help="torch.compile the U-Net")
    p.add_argument("--compile-scope", choices=["blocks", "model"], default="blocks")
    p.add_argument("--tf32", action="store_true", help="TF32 for float32 convolutions/matmuls (train.tf32)")
    p.add_argument("--jvp", default=None, help="override objective.jvp (fd-central, fd-forward, exact, dual)")
    p.add_argument("--attention", choices=["fast", "math"], default=None)
    p.add_argument("--warmup", type=int, default=None, help="untimed steps (default 3, or 5 with --compile)")
    p.add_argument("--iters", type=int, default=20, help="timed steps per variant")
    p.add_argument("--train-steps", type=int, default=0, help="instead: a short training run with a metrics log")
    p.add_argument("--data-dir", default=None,
                   help="real images: CIFAR-10 batches or class folders (default: synthetic uint8 data)")
    p.add_argument("--runs-dir", default="runs/bench")
    p.add_argument("--set", dest="overrides", action="append", default=[], help="extra config overrides")
    p.add_argument("--out", required=True, help="JSON results path")
    return p.parse_args()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def throughput(args, spec: str, images: torch.Tensor) -> dict:
    cfg = make_config(args, spec)
    variant = split_variant(spec)[0]
    trainer = build(cfg, images)
    obj = cfg.objective
    # mid-curriculum for mmf: λ = 0.5, gradients flow through du/dt
    trainer.step = obj.lambda_start + obj.lambda_warmup // 2 if variant == "mmf" else 0
    dev = trainer.device
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    warmup = args.warmup if args.warmup is not None else (5 if args.compile else 3)
    t0 = time.perf_counter()
    for _ in range(warmup):
        stats = trainer.train_step()
    sync(dev)
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(args.iters):
        stats = trainer.train_step()
    sync(dev)
    elapsed = time.perf_counter() - t0
    row = {
        "variant": spec, "jvp": obj.jvp, "tf32": cfg.train.tf32, "compile": cfg.train.compile,
        "compile_scope": cfg.train.compile_scope, "lambda": stats["lambda"], "batch": cfg.train.batch_size,
        "s_per_step": elapsed / args.iters, "images_per_s": cfg.train.batch_size * args.iters / elapsed,
        "warmup_s": warm_s, "loss": float(stats["loss"]),
        "peak_mem_gib": torch.cuda.max_memory_allocated(dev) / 2**30 if dev.type == "cuda" else None,
    }
    del trainer
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return row


def short_training(args, images: torch.Tensor) -> list[dict]:
    """A real Trainer.fit per variant with a compressed λ curriculum; returns the logged rows."""
    import csv

    n = args.train_steps
    rows = []
    for variant in args.variants:
        extra = [f"train.steps={n}", f"train.warmup_steps={max(1, n // 10)}", "objective.lambda_start=0",
                 f"objective.lambda_warmup={max(1, n // 2)}", f"train.log_every={max(1, min(100, n // 20))}",
                 f"train.ckpt_every={n}"]
        cfg = make_config(args, variant, extra)
        run_dir = Path(args.runs_dir) / f"cifar-{split_variant(variant)[0]}-{n}steps"
        if run_dir.exists():
            import shutil

            shutil.rmtree(run_dir)
        run_dir.mkdir(parents=True)
        fit = build(cfg, images, run_dir).fit()
        with (run_dir / "metrics.csv").open() as fh:
            log = list(csv.DictReader(fh))
        for r in log:
            print(f"{variant:9s} step {int(r['step']):6d}  loss {float(r['loss']):.4f}  mse {float(r['mse']):.4f}  "
                  f"λ {float(r['lambda']):.2f}  {float(r['samples_per_s']):8.1f} img/s")
        rows.append({"variant": variant, "run_dir": str(run_dir), **fit, "log": log})
    return rows


def main() -> None:
    args = parse()
    torch.backends.cudnn.benchmark = True
    images = dataset(args.data_dir)
    info = {
        "device": torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor() or "cpu",
        "torch": torch.__version__, "preset": args.preset, "precision": args.precision,
        "channels_last": args.channels_last, "compile": args.compile, "compile_scope": args.compile_scope,
        "tf32": args.tf32, "data": args.data_dir or "synthetic",
    }
    if args.train_steps > 0:
        result = {**info, "train_steps": args.train_steps, "runs": short_training(args, images)}
    else:
        for v in args.variants:  # a typo in a variant fails here, before any GPU time is spent
            make_config(args, v)
        rows, failed = [], []
        for v in args.variants:  # written after every variant, so a timeout keeps what finished
            try:
                r = throughput(args, v, images)
            except Exception as exc:  # noqa: BLE001 - one failing variant (OOM, compiler) must not cost the rest
                failed.append({"variant": v, "error": f"{type(exc).__name__}: {exc}"[:2000]})
                print(f"{v}: FAILED {failed[-1]['error'][:300]}", flush=True)
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            else:
                rows.append(r)
                print(f"{v}: {r['images_per_s']:.1f} images/s ({r['s_per_step']:.4f} s/step, "
                      f"warm-up {r['warmup_s']:.0f} s)", flush=True)
            write(args.out, {**info, "rows": rows, "failed": failed,
                             "complete": len(rows) + len(failed) == len(args.variants)})
        print(f"\n{info['device']}  preset={args.preset}  {args.precision}  channels_last={args.channels_last}  "
              f"compile={args.compile}")
        print(f"{'variant':10s} {'jvp':11s} {'λ':>5s} {'s/step':>8s} {'images/s':>9s} {'× fm':>6s} {'peak GiB':>9s}")
        base = rows[0]["images_per_s"] if rows and rows[0]["variant"] == "fm" else None
        for r in rows:
            rel = f"{base / r['images_per_s']:.2f}x" if base else "-"
            mem = f"{r['peak_mem_gib']:.1f}" if r["peak_mem_gib"] is not None else "-"
            print(f"{r['variant']:10s} {r['jvp']:11s} {r['lambda']:5.2f} {r['s_per_step']:8.4f} "
                  f"{r['images_per_s']:9.1f} {rel:>6s} {mem:>9s}")
        result = {**info, "rows": rows, "failed": failed, "complete": True}
    write(args.out, result)
    print(f"wrote {args.out}")


def write(path: str, result: dict) -> None:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=float) + "\n")


if __name__ == "__main__":
    from mmftraj.errors import UserError

    try:
        main()
    except UserError as exc:
        sys.exit(f"error: {exc}")
