"""cifar-small: one-step `mmf` against `fm` at 1 / 2 / 4 / 16 Euler steps and true `meanflow`, on
real CIFAR-10, on a CPU (the `small` preset of the cifar task), 3 training seeds (0, 1, 2).

    python benchmarks/cifar_small.py run --data-dir ~/data/cifar10-png      # trains what is missing
    python benchmarks/cifar_small.py table                                  # rebuilds the table

Metric: Fréchet distance in the features of a CIFAR-10 classifier the project trains itself
(`mmftraj.evaluation.image_classifier`; its test accuracy is in every record), 2000 samples
against the 10,000 test images, beside the floor of 2000 real training images. Lower is better;
not FID. Each finished run leaves one JSON and its 1-step (fm: also 16-step) sample grid under
benchmarks/records/cifar_small/, so the comparison accumulates across sessions and machines.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

import numpy as np

from mmftraj.experiments import grid, studies
from mmftraj.experiments.paired import format_p

ROOT = Path(__file__).parent / "records" / "cifar_small"
VARIANTS = ["fm", "meanflow", "mmf"]
KEEP = ("fd", "fd_data_floor", "fd_samples", "classifier_accuracy", "parameters", "train_time_s", "final_loss",
        "steps", "tangent", "threads")


def save_small(grid: Path, out: Path, rows: int = 8, pad: int = 1) -> None:
    """The run's grid of 32×32 samples is drawn at 2× (pixel-doubled) with a 1-pixel gap; halving it
    with nearest-neighbour keeps every image pixel, and the top-left rows × rows samples (64) keep
    the committed PNG near 150 KB (real-image samples barely compress)."""
    from PIL import Image

    side = rows * (32 + pad) + pad
    with Image.open(grid) as im:
        half = im.resize((im.width // 2, im.height // 2), Image.Resampling.NEAREST)
        half.crop((0, 0, min(side, half.width), min(side, half.height))).save(out, optimize=True)


def run(data_dir: Path, seeds: list[int], variants: list[str], runs_dir: Path, threads: int) -> None:
    """Train the cells (variant, seed) that have no record yet; the sample grids and the training
    log are copied beside the record before it is stored."""

    def path(cell) -> Path:
        variant, seed = cell
        return ROOT / f"{variant}-s{seed}.json"

    def make(cell, _) -> dict:
        variant, seed = cell
        name = f"{variant}-small-s{seed}"
        results, wall = grid.train_cell("cifar", variant, seed, name, runs_dir, preset="small", progress=True,
                                   overrides=[f"data.dir={json.dumps(str(data_dir))}", f"train.threads={threads}"])
        record = {"variant": variant, "seed": seed, "wall_s": wall, **{k: results[k] for k in KEEP if k in results}}
        run_dir = runs_dir / "cifar" / name
        ROOT.mkdir(parents=True, exist_ok=True)
        for k in ([1, 16] if variant == "fm" else [1]):
            samples = run_dir / f"samples-{k}step.png"
            if samples.is_file():
                save_small(samples, ROOT / f"{variant}-s{seed}-{k}step.png")
        shutil.copyfile(run_dir / "metrics.csv", ROOT / f"{variant}-s{seed}-metrics.csv")
        print(f"{variant} s{seed}: " + ", ".join(f"{k} {v:.2f}" for k, v in results["fd"].items())
              + f" ({record['wall_s']:.0f} s)", flush=True)
        return record

    grid.run_grid([(variant, seed) for seed in seeds for variant in variants], make,
                  load=lambda cell: grid.read_record(path(cell)),
                  save=lambda cell, record: grid.write_record(path(cell), record))


def table() -> str:
    records = [json.loads(p.read_text()) for p in sorted(ROOT.glob("*.json"))]
    if not records:
        return "no results yet under benchmarks/records/cifar_small/"
    # Training time from the trainer's own clock (kept in checkpoints, so a resumed run counts once);
    # wall_s in each record adds the evaluation and counts only the last invocation.
    rows = ["| variant | steps | Fréchet distance (mean ± s.e.) | seeds | training time (min) | threads |",
            "|---|---:|---:|---:|---:|---:|"]
    for variant in VARIANTS:
        mine = [r for r in records if r["variant"] == variant]
        for k in sorted({int(s.split("-")[0]) for r in mine for s in r["fd"]}):
            v = np.array([r["fd"][f"{k}-step"] for r in mine if f"{k}-step" in r["fd"]])
            se = v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else math.nan
            minutes = np.mean([r["train_time_s"] for r in mine]) / 60
            threads = ", ".join(sorted({str(r.get("threads", "?")) for r in mine}))
            rows.append(f"| {variant} | {k} | {v.mean():.2f}" + (f" ± {se:.2f}" if len(v) > 1 else "")
                        + f" | {len(v)} | {minutes:.0f} | {threads} |")
    rows += paired()
    floor = np.mean([r["fd_data_floor"] for r in records])
    acc = {round(r["classifier_accuracy"], 4) for r in records}
    params = ", ".join(f"{n:,}" for n in sorted({r["parameters"] for r in records if r.get("parameters")}))
    return "\n".join(rows) + (f"\n\nReal training images vs the test set (floor): {floor:.2f}; classifier test "
                              f"accuracy {', '.join(f'{a:.1%}' for a in sorted(acc))}; "
                              f"parameters {params or 'not recorded'}.")


def paired() -> list[str]:
    """One-step `mmf`, then one-step `meanflow`, minus each other (variant, step count), paired on
    the training seed: mean and 95 % t-interval over the seeds both have. Lower is better, so an
    interval below 0 favours the first. Each of the two tables is one family: its verdicts are
    Holm-adjusted over its rows (mmftraj.experiments.studies, which docs/findings.md reads too)."""
    rows = []
    for reference in ("mmf@1", "meanflow@1"):
        family = studies.cifar_family(ROOT, reference)
        if not family:
            continue
        name = reference.split("@")[0]
        rows += ["", f"{name} (1 step) minus each; verdict: Holm-adjusted two-sided t-test over this table's rows at "
                 "0.05, each row's interval and p its own.", "",
                 f"| {name} (1 step) minus | pairs | mean | 95 % interval | p | p (Holm) | verdict |",
                 "|---|---:|---:|---:|---:|---:|---|"]
        for c in family:
            variant, k = c.key.split("@")
            t = c.test
            interval = "–" if math.isnan(t.low) else f"[{t.low:.2f}, {t.high:.2f}]"
            rows.append(f"| {variant} ({k} step{'s' if int(k) > 1 else ''}) | {t.n} | {t.mean:+.2f} | {interval} | "
                        f"{format_p(t.p)} | {format_p(c.p_holm)} | {c.verdict} |")
    return rows or ["", "No `mmf` run yet: no paired differences."]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train the missing runs")
    r.add_argument("--data-dir", type=Path, required=True, help="CIFAR-10 (python batches or the PNG copy)")
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    r.add_argument("--variants", nargs="+", default=VARIANTS)
    r.add_argument("--runs-dir", type=Path, default=Path("runs"))
    r.add_argument("--threads", type=int, default=0, help="train.threads (0: the cores the load leaves free)")
    sub.add_parser("table", help="print the table from the stored results")
    args = parser.parse_args()
    if args.cmd == "run":
        run(args.data_dir, args.seeds, args.variants, args.runs_dir, args.threads)
    print(table())


if __name__ == "__main__":
    main()
