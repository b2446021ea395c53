"""Low data and held-out modes on toy2d, where one-step quality differs between the objectives.

    python benchmarks/generalization_toy2d.py run --seeds 0 1 2       # trains what is missing
    python benchmarks/generalization_toy2d.py table                   # rebuilds the tables

The maze2d report cannot separate the variants (every one plans at ~140). toy2d's checkerboard
can: `mmf-paper` collapses its one-step samples there (benchmarks/tangent_study/). This study asks
the paper's generalization questions where differences can show:
- low data: a fixed training set of N points (`data.size`; nested across N) instead of fresh
  points every step; metric: one-step sliced Wasserstein distance to *fresh* data (lower is
  better), beside the distance of the training set itself to fresh data (what memorizing scores);
- held-out mode: one checkerboard square never seen in training (`data.hold_out`); metrics: the
  distance to the training distribution and the share of samples landing in the held-out square.

Each finished run leaves one JSON under benchmarks/generalization_toy2d/ (one thread per run,
~40-60 s each here), so the study accumulates across sessions and machines. Paired differences
are `mmf` minus each other variant on the same seed and condition, with 95 % t-intervals.
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from mmftraj.experiments.report import mean_interval

ROOT = Path(__file__).parent / "generalization_toy2d"
VARIANTS = ["fm", "meanflow", "mmf-paper", "mmf", "mmf-full"]
REFERENCE = "mmf"
HELD_OUT_MODE = 5  # the upper square of the third column (mmftraj.data.toy2d.mode_of)
# condition -> data overrides
CONDITIONS = {
    "N=256": ["data.size=256"],
    "N=4096": ["data.size=4096"],
    "fresh": [],
    "held-out square": [f"data.hold_out=[{HELD_OUT_MODE}]"],
}
OVERRIDES = ["train.threads=1", "eval.steps=[1,4]"]


def run(seeds: list[int], conditions: list[str], variants: list[str]) -> None:
    from mmftraj.core.objective import label_options
    from mmftraj.runs import prepare_and_train

    ROOT.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        for condition in conditions:
            for label in variants:
                path = ROOT / f"{label}-{slug(condition)}-s{seed}.json"
                if path.is_file():
                    continue
                variant, extra = label_options(label)
                runs = Path(tempfile.mkdtemp(prefix="toy2d-generalization-"))
                t0 = time.perf_counter()
                try:
                    results = prepare_and_train(task="toy2d", preset="checkerboard",
                                                overrides=OVERRIDES + CONDITIONS[condition] + extra, objective=variant,
                                                seed=seed, name="run", runs_dir=runs, progress=False)
                finally:
                    shutil.rmtree(runs, ignore_errors=True)
                keep = ("swd", "swd_data_floor", "swd_training_set", "held_out_share", "held_out_share_whole",
                        "swd_whole", "final_loss", "steps", "tangent")
                record = {"variant": label, "condition": condition, "seed": seed,
                          "wall_s": round(time.perf_counter() - t0, 1), **{k: results[k] for k in keep if k in results}}
                path.write_text(json.dumps(record, indent=1) + "\n")
                print(f"{condition} {label} s{seed}: one-step {results['swd']['1-step']:.4f} "
                      f"({record['wall_s']:.0f} s)", flush=True)


def slug(condition: str) -> str:
    return condition.replace("=", "").replace(" ", "-")


def records() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(ROOT.glob("*.json"))]


def metric(r: dict, name: str, steps: int = 1) -> float:
    value = r[name]
    return float(value[f"{steps}-step"] if isinstance(value, dict) else value)


def rows(name: str) -> dict:
    """(condition, row label) -> {seed: value}; fm is scored at 1 and at 4 Euler steps."""
    out: dict = {}
    for r in records():
        if name not in r:
            continue
        for steps in ([1, 4] if r["variant"] == "fm" else [1]):
            label = f"fm@{steps}" if r["variant"] == "fm" else r["variant"]
            out.setdefault((r["condition"], label), {})[r["seed"]] = metric(r, name, steps)
    return out


def _pm(values: list[float], digits: int) -> str:
    v = np.array(values)
    se = v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else math.nan
    return f"{v.mean():.{digits}f} ± {se:.{digits}f}" if len(v) > 1 else f"{v.mean():.{digits}f}"


def score_table(name: str, title: str, digits: int = 4) -> str:
    data = rows(name)
    labels = [f"fm@{k}" for k in (1, 4)] + VARIANTS[1:]
    lines = [f"{title} (mean ± s.e. over seeds; n = seeds)", "",
             "| condition | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    for condition in CONDITIONS:
        cells = [_pm(list(data[condition, label].values()), digits) + f" (n={len(data[condition, label])})"
                 if (condition, label) in data else "–" for label in labels]
        if any(c != "–" for c in cells):
            lines.append(f"| {condition} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def paired_table(name: str, title: str, lower_is_better: bool = True, digits: int = 4,
                 words: tuple[str, str] = ("better", "worse")) -> str:
    data = rows(name)
    lines = [f"{title}: {REFERENCE} minus each variant, paired on seed (95 % t-interval)", "",
             "| condition | comparison | n | difference [95 % CI] | verdict |", "|---|---|---:|---:|---|"]
    for condition in CONDITIONS:
        ref = data.get((condition, REFERENCE), {})
        for label in [f"fm@{k}" for k in (1, 4)] + [v for v in VARIANTS[1:] if v != REFERENCE]:
            other = data.get((condition, label), {})
            seeds = sorted(set(ref) & set(other))
            if not seeds:
                continue
            mean, lo, hi = mean_interval(np.array([ref[s] - other[s] for s in seeds]))
            if len(seeds) < 2:
                verdict = "n/a"
            elif (hi < 0) if lower_is_better else (lo > 0):
                verdict = f"{REFERENCE} {words[0]}"
            elif (lo > 0) if lower_is_better else (hi < 0):
                verdict = f"{REFERENCE} {words[1]}"
            else:
                verdict = "not separable"
            ci = f"{mean:+.{digits}f} [{lo:+.{digits}f}, {hi:+.{digits}f}]" if len(seeds) > 1 else f"{mean:+.{digits}f}"
            lines.append(f"| {condition} | {REFERENCE} − {label} | {len(seeds)} | {ci} | {verdict} |")
    return "\n".join(lines)


def floors() -> str:
    """The data's own distances: fresh vs fresh, and the fixed training set vs fresh."""
    by: dict = {}
    for r in records():
        by.setdefault(r["condition"], {"fresh vs fresh": [], "training set vs fresh": []})
        by[r["condition"]]["fresh vs fresh"].append(r["swd_data_floor"])
        if "swd_training_set" in r:
            by[r["condition"]]["training set vs fresh"].append(r["swd_training_set"])
    lines = ["Data floors (sliced Wasserstein, same evaluation)", "",
             "| condition | fresh vs fresh | training set vs fresh |", "|---|---:|---:|"]
    for condition in CONDITIONS:
        if condition in by:
            f = by[condition]
            lines.append(f"| {condition} | {np.mean(f['fresh vs fresh']):.4f} | "
                         + (f"{np.mean(f['training set vs fresh']):.4f}" if f["training set vs fresh"] else "–") + " |")
    return "\n".join(lines)


def tables() -> str:
    return "\n\n".join([
        score_table("swd", "One-step sliced Wasserstein distance to fresh data of the training distribution "
                           "(fm: 1 and 4 Euler steps)"),
        paired_table("swd", "Sliced Wasserstein distance"),
        floors(),
        score_table("held_out_share", "Share of samples in the held-out square (data: 1/8 = 0.125 of the whole "
                                      "checkerboard; 0 of the training distribution)", digits=4),
        paired_table("held_out_share", "Share in the held-out square", words=("lower", "higher")),
    ])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train the missing cells")
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    r.add_argument("--conditions", nargs="+", default=list(CONDITIONS), choices=list(CONDITIONS))
    r.add_argument("--variants", nargs="+", default=VARIANTS)
    sub.add_parser("table", help="print the tables from the stored results")
    args = parser.parse_args()
    if args.cmd == "run":
        run(args.seeds, args.conditions, args.variants)
    print(tables())


if __name__ == "__main__":
    main()
