"""The data-size experiment on toy2d: does MMF's advantage over MeanFlow grow as data shrinks?

    python benchmarks/toy2d_datasize.py run --shard 1/2 &    # two processes, one thread each
    python benchmarks/toy2d_datasize.py run --shard 2/2
    python benchmarks/toy2d_datasize.py table                # markdown from the stored records

Checkerboard, trained on one fixed set of N points (`data.size`, drawn with `data.seed` = the
training seed, so an interval includes which points were seen) for N in 64, 256, 1024, 4096;
variants `meanflow` (conditional tangent, λ = 0), `meanflow-tmodel` (model tangent, λ = 0), `mmf`
(model tangent, λ warmed to 1) and `mmf-full` (λ ≡ 1); 8 training seeds. Metric: the one-step
sliced Wasserstein distance to fresh checkerboard points (lower is better), beside the training
set's own distance (what replaying it scores).

Held out from tuning (configs/provenance.yaml, `toy2d-checkerboard`): the toy2d defaults were
chosen on training seed 0 and the sample draw eval.seed 1234, so this grid trains seeds 1-8 and
draws its samples with eval.seed 20000. Every cell's record is stored as it finishes under
benchmarks/records/toy2d_datasize/. Paired differences are `mmf` minus each other variant on the
same seed and N; the whole table is one family, Holm-adjusted.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mmftraj.experiments import grid, studies
from mmftraj.experiments.paired import format_p

SIZES = (64, 256, 1024, 4096)
VARIANTS = ("meanflow", "meanflow-tmodel", "mmf", "mmf-full")
REFERENCE = "mmf"
SEEDS = tuple(range(1, 9))
EVAL_SEED = 20000
ROOT = Path(__file__).parent / "records" / "toy2d_datasize"


def path(label: str, size: int, seed: int) -> Path:
    return ROOT / f"{label}-N{size}-s{seed}.json"


def run(shard: tuple[int, int], threads: int) -> None:
    def make(cell, _) -> dict:
        label, size, seed = cell
        overrides = [f"train.threads={threads}", f"data.size={size}", f"data.seed={seed}",
                     f"eval.seed={EVAL_SEED}", "eval.steps=[1]"]
        results, wall = grid.train_cell("toy2d", label, seed, f"{label}-N{size}-s{seed}", preset="checkerboard",
                                        overrides=overrides)
        record = {"variant": label, "size": size, "seed": seed, "wall_s": wall, "overrides": overrides,
                  **{k: results[k] for k in ("swd", "swd_data_floor", "swd_training_set", "final_loss", "tangent")
                     if k in results}}
        print(f"N={size} {label} s{seed}: one-step {results['swd']['1-step']:.4f} ({wall:.0f} s)", flush=True)
        return record

    cells = [(label, size, seed) for seed in SEEDS for size in SIZES for label in VARIANTS]
    done, left = grid.run_grid(cells, make, load=lambda c: grid.read_record(path(*c)),
                               save=lambda c, r: grid.write_record(path(*c), r), shard=shard)
    print(f"{len(done)} of {len(cells)} cells have a record" + (f"; {len(left)} left to other shards" if left else ""))


def table() -> str:
    values = studies.datasize_values(ROOT)
    if not values:
        return f"no records under {ROOT} yet: `python benchmarks/toy2d_datasize.py run` trains them"
    floors = studies.datasize_floors(ROOT)
    lines = ["One-step sliced Wasserstein distance to fresh checkerboard points (mean ± s.e. over seeds; n seeds)",
             "", "| N | " + " | ".join(f"`{v}`" for v in VARIANTS) + " | training set itself |",
             "|---:|" + "---:|" * (len(VARIANTS) + 1)]
    for size in SIZES:
        cells = []
        for label in VARIANTS:
            v = np.array(list(values.get((size, label), {}).values()))
            cells.append(f"{v.mean():.4f} ± {v.std(ddof=1) / np.sqrt(len(v)):.4f} (n={len(v)})" if len(v) > 1
                         else (f"{v.mean():.4f} (n=1)" if len(v) else "–"))
        floor = f"{np.mean(floors[size]):.4f}" if size in floors else "–"
        lines.append(f"| {size} | " + " | ".join(cells) + f" | {floor} |")
    rows = studies.datasize_family(ROOT, list(VARIANTS))
    lines += ["", f"Paired differences, `{REFERENCE}` minus each variant on the same seed and N (95 % t-interval); "
              f"one family of {sum(np.isfinite(c.p_holm) for c in rows)} tests, Holm-adjusted", "",
              "| N | comparison | n | difference [95 % CI] | p | p (Holm) | verdict |",
              "|---:|---|---:|---:|---:|---:|---|"]
    for c in rows:
        (size, label), t = c.key, c.test
        ci = f"{t.mean:+.4f} [{t.low:+.4f}, {t.high:+.4f}]" if t.n > 1 else f"{t.mean:+.4f}"
        lines.append(f"| {size} | `{REFERENCE}` − `{label}` | {t.n} | {ci} | {format_p(t.p)} | {format_p(c.p_holm)} "
                     f"| {c.verdict} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train the cells that have no record yet")
    r.add_argument("--shard", default=None, help="I/N: this process trains cells I, I+N, ... (from 1)")
    r.add_argument("--threads", type=int, default=1)
    sub.add_parser("table", help="print the tables")
    args = parser.parse_args()
    if args.cmd == "run":
        run(grid.parse_shard(args.shard, first=1), args.threads)
    print(table())


if __name__ == "__main__":
    main()
