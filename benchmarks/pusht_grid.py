"""Push-T variant grid: every objective variant × training seeds × training-set sizes, each run's
record stored as it finishes, and a table with paired intervals corrected for multiplicity.

    python benchmarks/pusht_grid.py run --seeds 0 1 2 --threads 1 --shard 1/2   # one of two processes
    python benchmarks/pusht_grid.py run --variants mmf fm --seeds 0 --episodes 10 25
    python benchmarks/pusht_grid.py table                                           # markdown to stdout
    python benchmarks/pusht_grid.py run --study ood-180-270 --set 'data.hold_out_angle=[180,270]' \
        --set 'eval.angle=[180,270]'                                                # a study of its own

A cell is one `mmftraj train --task pusht` run with the task's defaults (plus `--set` overrides
given here); its record (`benchmarks/records/pusht/records/<label>-e<episodes>-s<seed>.json`) keeps the
run's results, every training-time evaluation (evals.csv) and the overrides. Cells run
seed-major, so each finished seed completes a set of pairs. The reported score of a run is the
test score (Diffusion Policy's 50 starts) of the weights chosen on the selection starts; the mean
of the last evaluations and the last one are in the table beside it.

Paired comparisons: `mmf` minus each other variant, paired on the training seed (which also
draws the training episodes), a t-interval and a two-sided t-test per pair; one family per
training-set size, Holm-adjusted (mmftraj.experiments.paired, as in the report). "not separable"
unless the adjusted test rejects at 0.05. Cells are run by mmftraj.experiments.grid.run_grid.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RECORDS = HERE / "records" / "pusht" / "records"
VARIANTS = ("mmf", "fm", "meanflow", "mmf-full", "mmf-paper")  # the order cells of one seed train in
REFERENCE = "mmf"


def record_path(label: str, episodes: int, seed: int, study: str = "") -> Path:
    """Records of the headline grid sit in RECORDS; those of another study (e.g. an OOD split run
    with other --set options) in RECORDS/<study>/, so the two never mix."""
    return (RECORDS / study if study else RECORDS) / f"{label}-e{episodes}-s{seed}.json"


def cells(variants, seeds, episodes) -> list[tuple[str, int, int]]:
    return [(label, e, s) for s in seeds for e in episodes for label in variants]


def run(args) -> None:
    """Train this shard's cells that have no record yet, storing each record as it finishes."""
    from mmftraj.core.objective import label_options
    from mmftraj.errors import UserError
    from mmftraj.experiments import grid

    runs = Path(args.runs_dir)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=HERE).stdout.strip() or None

    def overrides(label: str, episodes: int) -> list[str]:
        return [f"data.train_episodes={episodes}", f"train.threads={args.threads}", *args.set, *label_options(label)[1]]

    def load(cell) -> dict | None:
        label, episodes, seed = cell
        path = record_path(label, episodes, seed, args.study)
        record = grid.read_record(path)
        if record is not None and record.get("overrides") != overrides(label, episodes):
            raise SystemExit(f"{path} was trained with {record.get('overrides')}, not {overrides(label, episodes)}: "
                             "move it away or run with the same --set options")
        return record

    def make(cell, _) -> dict:
        label, episodes, seed = cell
        name = f"{args.study + '-' if args.study else ''}{label}-e{episodes}-s{seed}"
        print(f"{time.strftime('%H:%M:%S')} training {name}", flush=True)
        results, wall = grid.train_cell("pusht", label, seed, name, runs, group="grid",
                                   overrides=[f"data.train_episodes={episodes}", f"train.threads={args.threads}",
                                              *args.set])
        with (runs / "pusht" / "grid" / name / "evals.csv").open(newline="") as fh:
            evals = [{k: float(v) for k, v in row.items()} for row in csv.DictReader(fh)]
        print(f"{time.strftime('%H:%M:%S')} {name}: selected test score {results.get('selected_test_score')}",
              flush=True)
        return {"label": label, "episodes": episodes, "seed": seed, "overrides": overrides(label, episodes),
                "commit": commit, "wall_s": wall, "results": results, "evals": evals}

    try:
        shard = grid.parse_shard(args.shard, first=1)
    except UserError as err:
        raise SystemExit(str(err)) from None
    grid.run_grid(cells(args.variants, args.seeds, args.episodes), make, load=load, shard=shard,
                  save=lambda cell, record: grid.write_record(record_path(*cell, args.study), record))


def load_records(study: str = "") -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((RECORDS / study if study else RECORDS).glob("*.json"))]


def paired_rows(study: str, episodes: int) -> list[dict]:
    """`mmf` minus each other variant, paired on seed; one Holm family per training-set size
    (mmftraj.experiments.studies.pusht_family, which docs/findings.md quotes too)."""
    from mmftraj.experiments.studies import pusht_family

    return [{"other": c.key[1], "n": c.test.n, "mean": c.test.mean, "low": c.test.low, "high": c.test.high,
             "p": c.test.p, "p_holm": c.p_holm, "verdict": c.verdict}
            for c in pusht_family(RECORDS / study if study else RECORDS, episodes)]


def table(study: str = "") -> str:
    from mmftraj.experiments.studies import pusht_last_mean

    records = load_records(study)
    if not records:
        return f"No records yet in {RECORDS}."
    lines = []
    for episodes in sorted({r["episodes"] for r in records}, reverse=True):
        mine = [r for r in records if r["episodes"] == episodes]
        lines += [f"### {episodes} training episodes", "",
                  "| variant | seeds | chosen on selection starts | mean of last evaluations | last | success "
                  "(chosen) | train min |", "|---|---:|---:|---:|---:|---:|---:|"]
        for label in VARIANTS:
            rs = [r for r in mine if r["label"] == label]
            if not rs:
                continue
            res = [{**r["results"], "mean_last": pusht_last_mean(r["results"])} for r in rs]

            def pm(key, res=res):
                v = np.array([x[key] for x in res], dtype=float)
                se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
                return f"{v.mean():.3f} ± {se:.3f}" if len(v) > 1 else f"{v.mean():.3f}"

            lines.append(f"| {label} | {len(rs)} | {pm('selected_test_score')} | {pm('mean_last')} | "
                         f"{pm('last_test_score')} | {pm('selected_test_success')} | "
                         f"{np.mean([x['train_time_s'] for x in res]) / 60:.0f} |")
        rows = paired_rows(study, episodes)
        if rows:
            lines += ["", f"{REFERENCE} minus (chosen weights' test score, paired on seed, 95 % t-interval; "
                      "Holm over this table's comparisons):", "",
                      "| other | pairs | mean | 95 % interval | p | p (Holm) | verdict |",
                      "|---|---:|---:|---:|---:|---:|---|"]
            lines += [f"| {r['other']} | {r['n']} | {r['mean']:+.3f} | [{r['low']:+.3f}, {r['high']:+.3f}] | "
                      f"{r['p']:.3f} | {r['p_holm']:.3f} | {r['verdict']} |" for r in rows]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train the cells that have no record yet",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    r.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS, help="objective variants")
    r.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="training seeds (also draw the episodes)")
    r.add_argument("--episodes", nargs="+", type=int, default=[90], help="training-set sizes (data.train_episodes)")
    r.add_argument("--threads", type=int, default=1, help="train.threads of each run")
    r.add_argument("--shard", default="1/1", help="I/N: this process trains cells I, I+N, ... of the grid")
    r.add_argument("--runs-dir", default="runs", help="where the runs live: <runs-dir>/pusht/grid/<cell>/")
    r.add_argument("--set", action="append", default=[], help="a config override for every cell (repeatable)")
    r.add_argument("--study", default="", help="name of a study with its own --set options (records in a subfolder)")
    t = sub.add_parser("table", help=f"print the markdown table of the records in {RECORDS}")
    t.add_argument("--study", default="", help="the study's records instead of the headline grid's")
    args = parser.parse_args()
    if args.command == "run":
        run(args)
    else:
        print(table(args.study))


if __name__ == "__main__":
    main()
