"""Training-step cost of each objective variant and JVP backend, relative to flow matching.

Every configuration is timed in the same process, interleaved round-robin so machine noise hits
all of them alike; the figure reported is the median step time divided by fm's median.

    python benchmarks/objective_cost.py                 # toy MLP + ~5M transformer, batch 64
    python benchmarks/objective_cost.py --models mlp --repeats 30 --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from mmftraj.core import ModularMeanFlow, ObjectiveConfig
from mmftraj.models.mlp import MLPConfig, TimeMLP
from mmftraj.models.transformer import build_transformer, count_parameters, preset_config

# (label, variant, jvp backend, tangent, λ)
CONFIGS = [
    ("fm", "fm", "fd-central", "model", 0.0),
    ("mmf λ=0 fd-central (default)", "mmf", "fd-central", "model", 0.0),
    ("mmf λ=1 fd-central (default)", "mmf", "fd-central", "model", 1.0),
    ("mmf λ=0 fd-central, tangent=v", "mmf", "fd-central", "conditional", 0.0),
    ("mmf λ=1 fd-central, tangent=v", "mmf", "fd-central", "conditional", 1.0),
    ("mmf λ=0 fd-forward", "mmf", "fd-forward", "model", 0.0),
    ("mmf λ=1 fd-forward", "mmf", "fd-forward", "model", 1.0),
    ("mmf λ=0 exact", "mmf", "exact", "model", 0.0),
    ("mmf λ=1 exact", "mmf", "exact", "model", 1.0),
    ("mmf λ=0 exact, all rows r<t", "mmf-all", "exact", "conditional", 0.0),
    ("mmf λ=1 exact, all rows r<t", "mmf-all", "exact", "conditional", 1.0),
]


def build(kind: str):
    if kind == "mlp":
        model = TimeMLP(MLPConfig())
        return model, torch.randn(256, 2), {}
    cfg = preset_config("base", horizon=64, dim_in=6)
    model = build_transformer(cfg)
    model.attention_backend = "math"  # the exact backend needs it; fd backends use the same path for fairness
    return model, torch.randn(64, 64, 6), {}


def step_fn(model, x, label, variant, backend, tangent, lam):
    equal = 0.0 if variant == "mmf-all" else 0.75
    obj = ModularMeanFlow(ObjectiveConfig(variant="fm" if variant == "fm" else "mmf", jvp=backend, tangent=tangent,
                                          equal_fraction=equal))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    gen = torch.Generator().manual_seed(0)

    def step():
        loss, _ = obj.loss(model, x, step=0, generator=gen, lam=lam)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", nargs="+", default=["mlp", "transformer"], choices=["mlp", "transformer"])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None, help="write the table as JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    results = {}
    for kind in args.models:
        torch.manual_seed(0)
        model, x, _ = build(kind)
        steps = {c[0]: step_fn(model, x, *c) for c in CONFIGS}
        times = {k: [] for k in steps}
        for fn in steps.values():  # warm-up
            fn()
        for _ in range(args.repeats):
            for k, fn in steps.items():
                t0 = time.perf_counter()
                fn()
                times[k].append(time.perf_counter() - t0)
        base = statistics.median(times["fm"])
        results[kind] = {k: {"median_ms": 1000 * statistics.median(v), "vs_fm": statistics.median(v) / base}
                         for k, v in times.items()}
        print(f"\n{kind}: {count_parameters(model) / 1e6:.2f}M parameters, batch {x.shape[0]}, "
              f"input {tuple(x.shape[1:])}, {args.threads} threads, {args.repeats} interleaved repeats")
        print(f"{'configuration':36s} {'median ms':>10s} {'× fm':>7s}")
        for k, v in results[kind].items():
            print(f"{k:36s} {v['median_ms']:10.1f} {v['vs_fm']:7.2f}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
