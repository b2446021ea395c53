"""Low data and held-out structure where one-step quality differs between the objectives.

    python benchmarks/generalization.py run --task toy2d --seeds 0 1 2     # trains what is missing
    python benchmarks/generalization.py run --task motion --seeds 0 1 2
    python benchmarks/generalization.py table --task motion                # rebuilds the tables

The maze2d report cannot separate the variants (every one plans at ~140). toy2d's checkerboard
and the motion gait table can: one-step quality differs there (benchmarks/records/tangent_study/). This
study asks the paper's generalization questions on them:
- low data: toy2d, a fixed training set of N points (`data.size`; nested across N) instead of
  fresh points every step; motion, a nested share of the training episodes (`data.fraction`).
  Metric: one-step sliced Wasserstein distance to data never trained on (lower is better), beside
  the distance of the training set itself (what memorizing scores);
- held-out structure: toy2d, one checkerboard square never seen (`data.hold_out`); motion, a band
  of walking speeds never seen (`data.hold_out_speed`, an interpolation inside the walking gait).
  Metrics: the distance, and the share of samples landing in the held-out region.

Each finished run leaves one JSON under benchmarks/records/generalization/<task>/ (one thread per run;
toy2d ~40-60 s, motion ~5-8 min here), so the study accumulates across sessions and machines.
Paired differences are `mmf` minus each other variant on the same seed and condition, with 95 %
t-intervals; a last table compares each variant's lead over MeanFlow under a condition with the
same lead with all the data (the tangent study's runs, same seeds). Each printed table is one
family: its verdicts are Holm-adjusted over its rows (mmftraj.experiments.studies, which
docs/findings.md reads too).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mmftraj.experiments import grid, studies
from mmftraj.experiments.paired import format_p

VARIANTS = ["fm", "meanflow", "mmf-paper", "mmf", "mmf-full"]
REFERENCE = studies.REFERENCE
HELD_OUT_MODE = 5  # toy2d: the upper square of the third column (mmftraj.data.toy2d.mode_of)
SPEED_BAND = (1.2, 1.4)  # motion: walking speeds (m/s) held out; walks span 1.0-1.6, runs 2.6-3.4


@dataclass(frozen=True)
class Study:
    preset: str | None
    overrides: list[str]
    conditions: dict[str, list[str]]  # condition -> data overrides
    fm_steps: tuple[int, int]  # fm is scored at one Euler step and at the k it needs
    floors: dict[str, str]  # column of the data-floor table -> record key
    share_title: str  # what the held-out share is a share of

    @property
    def labels(self) -> list[str]:
        return [f"fm@{k}" for k in self.fm_steps] + VARIANTS[1:]


STUDIES = {
    "toy2d": Study(
        "checkerboard", ["train.threads=1", "eval.steps=[1,4]"],
        {"N=256": ["data.size=256"], "N=4096": ["data.size=4096"], "fresh": [],
         "held-out square": [f"data.hold_out=[{HELD_OUT_MODE}]"]},
        (1, 4), {"fresh vs fresh": "swd_data_floor", "training set vs fresh": "swd_training_set"},
        "Share of samples in the held-out square (data: 1/8 = 0.125 of the whole checkerboard; 0 of the "
        "training distribution)"),
    "motion": Study(
        None, ["train.threads=1", "eval.steps=[1,16]"],
        {"1/64 of episodes": ["data.fraction=0.015625"],
         "held-out speed": [f"data.hold_out_speed=[{SPEED_BAND[0]},{SPEED_BAND[1]}]"]},
        (1, 16), {"training set vs held-out": "swd_data_floor"},
        f"Share of samples with planar speed in the held-out band {SPEED_BAND[0]}-{SPEED_BAND[1]} m/s "
        "(training data: none)"),
}


def root(task: str) -> Path:
    return Path(__file__).parent / "records" / "generalization" / task


def run(task: str, seeds: list[int], conditions: list[str], variants: list[str]) -> None:
    """Train the cells (label, condition, seed) that have no record yet, each in a throwaway folder."""
    study = STUDIES[task]

    def path(cell) -> Path:
        label, condition, seed = cell
        return root(task) / f"{label}-{slug(condition)}-s{seed}.json"

    def make(cell, _) -> dict:
        label, condition, seed = cell
        results, wall = grid.train_cell(task, label, seed, f"{label}-s{seed}", preset=study.preset,
                                   overrides=study.overrides + study.conditions[condition])
        keep = ("swd", "swd_data_floor", "swd_training_set", "held_out_share", "held_out_share_whole",
                "swd_whole", "roughness", "windows", "final_loss", "steps", "tangent")
        record = {"task": task, "variant": label, "condition": condition, "seed": seed,
                  "wall_s": wall, **{k: results[k] for k in keep if k in results}}
        if "hold_out_speed" in results:  # motion: the band's shares, in toy2d's layout
            shares = results["hold_out_speed"]["share"]
            record["held_out_share"] = {k: v for k, v in shares.items() if k.endswith("-step")}
            record["held_out_share_whole"] = shares["held-out data"]
        print(f"{task} {condition} {label} s{seed}: one-step {results['swd']['1-step']:.4f} "
              f"({record['wall_s']:.0f} s)", flush=True)
        return record

    cells = [(label, condition, seed) for seed in seeds for condition in conditions for label in variants]
    grid.run_grid(cells, make, load=lambda cell: grid.read_record(path(cell)),
                  save=lambda cell, record: grid.write_record(path(cell), record))


def slug(condition: str) -> str:
    return condition.replace("=", "").replace("/", "of").replace(" ", "-")


def records(task: str) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(root(task).glob("*.json"))]


def rows(task: str, name: str) -> dict:
    """(condition, row label) -> {seed: value}; fm is scored at one Euler step and at the k it needs."""
    return studies.generalization_values(root(task), name)


def _pm(values: list[float], digits: int) -> str:
    v = np.array(values)
    se = v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else math.nan
    return f"{v.mean():.{digits}f} ± {se:.{digits}f}" if len(v) > 1 else f"{v.mean():.{digits}f}"


def score_table(task: str, name: str, title: str, digits: int = 4) -> str:
    data, study = rows(task, name), STUDIES[task]
    lines = [f"{title} (mean ± s.e. over seeds; n = seeds)", "",
             "| condition | " + " | ".join(study.labels) + " |", "|---|" + "---:|" * len(study.labels)]
    for condition in study.conditions:
        cells = [_pm(list(data[condition, label].values()), digits) + f" (n={len(data[condition, label])})"
                 if (condition, label) in data else "–" for label in study.labels]
        if any(c != "–" for c in cells):
            lines.append(f"| {condition} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


FAMILY_NOTE = ("Verdict: Holm-adjusted two-sided t-test over the rows of this table (one family) at 0.05; "
               "each row's interval and p are its own.")


def _interval(t, digits: int) -> str:
    return f"{t.mean:+.{digits}f} [{t.low:+.{digits}f}, {t.high:+.{digits}f}]" if t.n > 1 else f"{t.mean:+.{digits}f}"


def paired_table(task: str, name: str, title: str, words: tuple[str, str] = studies.LOWER_IS_BETTER,
                 digits: int = 4) -> str:
    """`mmf` minus each variant under each condition: one table, one family (`words`: the verdict
    for a difference above and below 0)."""
    study = STUDIES[task]
    lines = [f"{title}: {REFERENCE} minus each variant, paired on seed (95 % t-interval). {FAMILY_NOTE}", "",
             "| condition | comparison | n | difference [95 % CI] | p | p (Holm) | verdict |",
             "|---|---|---:|---:|---:|---:|---|"]
    for c in studies.generalization_family(root(task), name, words, list(study.conditions), study.labels):
        condition, label = c.key
        lines.append(f"| {condition} | {REFERENCE} − {label} | {c.test.n} | {_interval(c.test, digits)} | "
                     f"{format_p(c.test.p)} | {format_p(c.p_holm)} | {c.verdict} |")
    return "\n".join(lines)


def change_table(task: str, digits: int = 4) -> str:
    """Each variant's lead over MeanFlow under a condition against the same lead with all the data
    (the tangent study's runs, the same seeds): does the condition widen or narrow it? One table,
    one family."""
    rows = studies.change_family(root(task).parents[1], task, STUDIES[task].labels)
    if not rows:
        return ""
    lines = [f"Change of each variant's lead over `{studies.CHANGE_BASELINE}` (its distance minus "
             f"`{studies.CHANGE_BASELINE}`'s, same seed) from all the data (the tangent study's runs) to the "
             f"condition, paired on seed; < 0: the lead grows. {FAMILY_NOTE}", "",
             "| condition | variant | lead, condition | lead, all data | change [95 % CI] | p | p (Holm) | verdict |",
             "|---|---|---:|---:|---:|---:|---:|---|"]
    for c in rows:
        condition, label = c.key
        here, full = c.means()
        lines.append(f"| {condition} | {label} | {here:+.{digits}f} | {full:+.{digits}f} | "
                     f"{_interval(c.test, digits)} | {format_p(c.test.p)} | {format_p(c.p_holm)} | {c.verdict} |")
    return "\n".join(lines)


def floors(task: str) -> str:
    """The data's own distances under the same evaluation (what a perfect generator, or memorizing
    the training set, scores)."""
    study = STUDIES[task]
    by: dict = {}
    for r in records(task):
        for column, key in study.floors.items():
            if key in r:
                by.setdefault(r["condition"], {}).setdefault(column, []).append(r[key])
    lines = ["Data floors (sliced Wasserstein, same evaluation)", "",
             "| condition | " + " | ".join(study.floors) + " |", "|---|" + "---:|" * len(study.floors)]
    for condition in study.conditions:
        if condition in by:
            cells = [f"{np.mean(by[condition][c]):.4f}" if c in by[condition] else "–" for c in study.floors]
            lines.append(f"| {condition} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def data_share(task: str) -> str:
    """The held-out data's own share in the held-out region, as the runs measured it."""
    values = [r["held_out_share_whole"] for r in records(task) if "held_out_share_whole" in r]
    return f"; the data it is scored against: {np.mean(values):.4f}" if values else ""


def tables(task: str) -> str:
    if not records(task):
        return (f"no results under {root(task)} yet: `python benchmarks/generalization.py run --task {task}` "
                "trains them")
    data_name = "fresh data of the training distribution" if task == "toy2d" else "held-out episodes"
    return "\n\n".join(filter(None, [
        score_table(task, "swd", f"One-step sliced Wasserstein distance to {data_name} "
                                 f"(fm: {' and '.join(map(str, STUDIES[task].fm_steps))} Euler steps)"),
        paired_table(task, "swd", "Sliced Wasserstein distance"),
        floors(task),
        score_table(task, "held_out_share", STUDIES[task].share_title + data_share(task), digits=4),
        paired_table(task, "held_out_share", "Share in the held-out region", words=("higher", "lower")),
        change_table(task),
    ]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train the missing cells")
    r.add_argument("--task", choices=sorted(STUDIES), required=True)
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    r.add_argument("--conditions", nargs="+", default=None, help="default: every condition of the task")
    r.add_argument("--variants", nargs="+", default=VARIANTS, choices=VARIANTS)
    t = sub.add_parser("table", help="print the tables from the stored results")
    t.add_argument("--task", choices=sorted(STUDIES), required=True)
    args = parser.parse_args()
    if args.cmd == "run":
        conditions = args.conditions or list(STUDIES[args.task].conditions)
        unknown = [c for c in conditions if c not in STUDIES[args.task].conditions]
        if unknown:
            parser.error(f"unknown condition(s) {unknown}; {args.task} has {list(STUDIES[args.task].conditions)}")
        run(args.task, args.seeds, conditions, args.variants)
    print(tables(args.task))


if __name__ == "__main__":
    main()
