"""Matmul/convolution FLOPs of one CIFAR training step, split by the precision they run in.

A hardware-independent cost model for `benchmarks/cifar_throughput.py`: the real training step
(`Trainer.train_step`, configs/cifar.yaml, bf16 autocast) is run once on the CPU under a dispatch
mode that counts every convolution, matmul and attention FLOP (torch.utils.flop_counter's
formulas) by input dtype and by forward / backward. bf16 work runs on a GPU's bf16 tensor cores;
float32 work (du/dt, and what back-propagates through it) on TF32 tensor cores at half that rate,
or without tensor cores when TF32 is off.

`reference` is the step of the official MeanFlow CIFAR-10 code, written with this U-Net: no
autocast, forward-mode JVP over the whole batch (u from its primal), target detached, so the
backward runs through u's forward only.

    python benchmarks/step_flops.py --out benchmarks/records/cifar_cpu/step_flops.json   # default U-Net, batch 8

Counts scale linearly with the batch; the table reports GFLOP per image. Attention runs as
explicit matmuls here (`model.attention=math`): the same FLOPs as a fused kernel's forward.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from mmftraj.experiments.cifar_step import PRESET_OVERRIDES, build, dataset, make_config, split_variant  # noqa: E402

VARIANTS = ["fm", "meanflow", "meanflow@objective.jvp=dual", "mmf", "mmf@objective.jvp=dual", "reference"]


class PrecisionFlops(TorchDispatchMode):
    """Counts FLOPs of the ops flop_counter knows, keyed by (forward|backward, input dtype)."""

    def __init__(self):
        super().__init__()
        self.counts: dict[str, float] = defaultdict(float)

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        packet = func._overloadpacket
        if packet in flop_registry:
            flops = flop_registry[packet](*args, **kwargs, out_val=out)
            dtype = next(a.dtype for a in args if torch.is_tensor(a))
            phase = "backward" if torch._C._current_autograd_node() is not None else "forward"
            self.counts[f"{phase} {str(dtype).removeprefix('torch.')}"] += flops
        return out


def reference_step(trainer) -> None:
    """MeanFlow's official step: float32, JVP over every row, u from the JVP's primal, sg target."""
    gen = torch.Generator().manual_seed(0)
    batch = trainer.batch_fn(gen, 0)
    x, aug = batch["x"], batch["cond"]["aug"]
    n = x.shape[0]
    noise = torch.randn(x.shape, generator=gen)
    r, t = trainer.objective.time_sampler.sample(n, gen)
    z = (1 - t).view(-1, 1, 1, 1) * x + t.view(-1, 1, 1, 1) * noise
    v = noise - x
    u, dudt = trainer.model(z, r, t, aug=aug, tangent=(v, torch.zeros_like(r), torch.ones_like(t)))
    target = (v - (t - r).view(-1, 1, 1, 1) * dudt).detach()
    ((u - target) ** 2).flatten(1).sum(1).mean().backward()


def count(args, spec: str, images: torch.Tensor) -> dict:
    name = split_variant(spec)[0]
    cfg = make_config(args, "meanflow" if name == "reference" else spec, ["model.attention=math"])
    trainer = build(cfg, images)
    obj = cfg.objective
    trainer.step = obj.lambda_start + obj.lambda_warmup // 2 if name == "mmf" else 0
    mode = PrecisionFlops()
    with mode:
        if name == "reference":
            reference_step(trainer)
            lam = 0.0
        else:
            lam = trainer.train_step()["lambda"]
    per_image = {k: v / cfg.train.batch_size / 1e9 for k, v in sorted(mode.counts.items())}
    return {"variant": spec, "jvp": "dual (as torch.func.jvp)" if name == "reference" else obj.jvp,
            "lambda": lam, "gflop_per_image": per_image, "total": sum(per_image.values())}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESET_OVERRIDES), default="ddpmpp")
    p.add_argument("--batch", type=int, default=8, help="a multiple of 4 keeps the r != t share at exactly 75 %%")
    p.add_argument("--variants", nargs="+", default=VARIANTS)
    p.add_argument("--out", default=None, help="JSON results path")
    args = p.parse_args()
    ns = argparse.Namespace(device="cpu", preset=args.preset, batch=args.batch, precision="bf16",
                            compile=False, compile_scope="blocks", tf32=False, channels_last=False,
                            jvp=None, attention=None, overrides=["train.threads=2"])
    torch.manual_seed(0)
    images = dataset(None)
    rows = [count(ns, v, images) for v in args.variants]
    keys = sorted({k for r in rows for k in r["gflop_per_image"]})
    print(f"GFLOP per image, {args.preset}, batch {args.batch}")
    print(f"{'variant':30s} {'λ':>4s} " + " ".join(f"{k:>17s}" for k in keys) + f" {'total':>8s}")
    for r in rows:
        cells = " ".join(f"{r['gflop_per_image'].get(k, 0.0):17.2f}" for k in keys)
        print(f"{r['variant']:30s} {r['lambda']:4.1f} {cells} {r['total']:8.2f}")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"preset": args.preset, "batch": args.batch, "rows": rows},
                                             indent=1) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
