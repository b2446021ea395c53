"""The tangent study: du/dt along the conditional velocity ε − x or the model's own u(z, t, t),
crossed with λ ∈ {0, warm-up, 1}, on the cheap tasks, ≥ 3 training seeds, one table.

    python benchmarks/tangent_study.py run --task toy2d --seeds 0 1 2     # trains what is missing
    python benchmarks/tangent_study.py table                              # rebuilds the table

Each finished run leaves one small JSON under benchmarks/records/tangent_study/<task>/ (its one-step
metric, final mse, wall time), so the study accumulates across sessions and machines and the
table never needs the run folders. Lower is better for every metric here (distances). Paired
tables: conditional minus model tangent on the same seed (> 0: the model tangent is better), every
task in one table; one-step `mmf` minus each other label, one table per task; maze2d's model minus
conditional from the standard report's runs. Each printed table is one family: its verdicts are
Holm-adjusted over its rows (mmftraj.experiments.studies, which docs/findings.md reads too).
Why the tangent matters: docs/objective.md.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

from mmftraj.experiments import grid, studies
from mmftraj.experiments.paired import format_p

ROOT = Path(__file__).parent / "records" / "tangent_study"
LEVELS = studies.LEVELS  # λ level -> (conditional-tangent label, model-tangent label)
# task -> (preset, overrides, metric path in results.json, metric name); one thread per run
TASKS = {
    "toy2d": ("checkerboard", ["train.threads=1"], ("swd", "1-step"), "one-step sliced Wasserstein distance"),
    "motion": (None, ["train.threads=1"], ("swd", "1-step"), "one-step sliced Wasserstein distance (held-out windows)"),
    "digits": (None, ["train.threads=1"], ("fd", "1-step"), "one-step Fréchet distance (classifier features)"),
}


def run(task: str, seeds: list[int], keep: Path | None, only: list[str] | None = None) -> None:
    """Train the cells (label, seed) that have no record yet; their runs are kept under `keep`
    (a runs folder) or thrown away."""
    preset, overrides, metric, _ = TASKS[task]
    labels = ["fm"] + [label for pair in LEVELS.values() for label in pair]  # fm: the one-step baseline
    labels = [label for label in labels if only is None or label in only]

    def path(cell) -> Path:
        label, seed = cell
        return ROOT / task / f"{label}-s{seed}.json"

    def make(cell, _) -> dict:
        label, seed = cell
        results, wall = grid.train_cell(task, label, seed, f"{label}-s{seed}", keep, preset=preset, overrides=overrides)
        value = results
        for k in metric:
            value = value[k]
        record = {"task": task, "variant": label, "tangent": results["tangent"], "seed": seed,
                  "metric": float(value), "final_loss": results.get("final_loss"),
                  "wall_s": wall, "steps": results.get("steps"),
                  # the metric at every step count the run was scored at, and motion's roughness
                  "by_steps": results[metric[0]], **({"roughness": results["roughness"]}
                                                     if "roughness" in results else {})}
        print(f"{task} {label} s{seed}: {value:.4f} ({record['wall_s']:.0f} s)", flush=True)
        return record

    grid.run_grid([(label, seed) for seed in seeds for label in labels], make,
                  load=lambda cell: grid.read_record(path(cell)),
                  save=lambda cell, record: grid.write_record(path(cell), record))


def one_step_table() -> str:
    """Every variant's one-step metric (fm: one Euler step), mean ± s.e. over seeds."""
    labels = ["fm"] + [label for pair in LEVELS.values() for label in pair]
    lines = ["| task | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    for task in TASKS:
        folder = ROOT / task
        if not folder.is_dir():
            continue
        cells = []
        for label in labels:
            values = np.array([json.loads(p.read_text())["metric"] for p in sorted(folder.glob(f"{label}-s*.json"))])
            se = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else math.nan
            cells.append(f"{values.mean():.4f} ± {se:.4f} (n={len(values)})" if len(values) else "–")
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def steps_table(labels=("mmf", "fm")) -> str:
    """The metric (and motion's roughness) at every step count a run was scored at, mean ± s.e.
    over the seeds whose record keeps them (`by_steps`)."""
    lines = []
    for task in TASKS:
        records = [json.loads(p.read_text()) for p in sorted((ROOT / task).glob("*.json"))]
        records = [r for r in records if r["variant"] in labels and "by_steps" in r]
        if not records:
            continue
        ks = sorted({k for r in records for k in r["by_steps"]}, key=lambda k: int(k.split("-")[0]))
        lines += [f"{task}, by network evaluations per sample (mean ± s.e. over seeds):", "",
                  "| | " + " | ".join(ks) + " |", "|---|" + "---:|" * len(ks)]
        for field, name in (("by_steps", TASKS[task][2][0]), ("roughness", "roughness")):
            for label in labels:
                mine = [r for r in records if r["variant"] == label and field in r]
                cells = []
                for k in ks:
                    v = np.array([r[field][k] for r in mine if k in r[field]])
                    se = v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else math.nan
                    cells.append(f"{v.mean():.4f} ± {se:.4f}" if len(v) else "–")
                if mine:
                    seeds = ",".join(str(r["seed"]) for r in mine)
                    lines.append(f"| `{label}` {name} (seeds {seeds}) | " + " | ".join(cells) + " |")
        data = next((r["roughness"]["held-out data"] for r in records
                     if "held-out data" in r.get("roughness", {})), None)
        if data is not None:
            lines.append(f"| held-out data roughness | {data:.4f} |" + " |" * (len(ks) - 1))
        walls = {label: [r["wall_s"] for r in records if r["variant"] == label] for label in labels}
        lines += ["", "Wall time per run, one thread: " + "; ".join(
            f"`{k}` {np.mean(v):.0f} s ({min(v):.0f}–{max(v):.0f})" for k, v in walls.items() if v), ""]
    return "\n".join(lines)


def _pm(values: dict[int, float], digits: int) -> str:
    v = np.array(list(values.values()))
    se = v.std(ddof=1) / math.sqrt(len(v)) if len(v) > 1 else 0.0
    return f"{v.mean():.{digits}f} ± {se:.{digits}f}"


def _row(c, digits: int) -> str:
    """A compared row: a − b with its own interval and p, then its table's Holm p and verdict."""
    t = c.test
    return (f"{t.mean:+.{digits}f} [{t.low:+.{digits}f}, {t.high:+.{digits}f}] | {format_p(t.p)} | "
            f"{format_p(c.p_holm)} | {c.verdict} (n = {t.n})")


FAMILY_NOTE = ("Verdict: Holm-adjusted two-sided t-test over the rows of this table (one family) at 0.05; "
               "each row's interval and p are its own.")


def table() -> str:
    """Conditional minus model tangent at each λ: every task in one table, one family."""
    lines = [FAMILY_NOTE, "", "| task | λ | conditional tangent | model tangent | conditional − model (95% CI) | p | "
             "p (Holm) | verdict |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for c in studies.tangent_family(ROOT):
        task, level = c.key
        lines.append(f"| {task} | {level} | {_pm(c.a, 4)} | {_pm(c.b, 4)} | {_row(c, 4)} |")
    return "\n".join(lines)


def mmf_table(task: str) -> str:
    """One-step `mmf` minus each other label on one task: one table, one family."""
    rows = studies.tangent_mmf_family(ROOT, task)
    if not rows:
        return ""
    lines = [f"{task}: one-step `mmf` minus each label, paired on seed (lower is better). {FAMILY_NOTE}", "",
             "| label | `mmf` | label | `mmf` − label (95% CI) | p | p (Holm) | verdict |",
             "|---|---:|---:|---:|---:|---:|---|"]
    lines += [f"| {c.key} | {_pm(c.a, 4)} | {_pm(c.b, 4)} | {_row(c, 4)} |" for c in rows]
    return "\n".join(lines)


def maze2d_table() -> str:
    """maze2d (U-Maze, the standard report's runs; higher is better): the in-distribution
    normalized score of each label from the stored report records, paired model − conditional;
    one table, one family."""
    lines = [FAMILY_NOTE, "", "| task | λ | conditional tangent | model tangent | model − conditional (95% CI) | p | "
             "p (Holm) | verdict |", "|---|---|---:|---:|---:|---:|---:|---|"]
    for c in studies.maze2d_tangent_family(studies.maze2d_tangent_values()):
        lines.append(f"| maze2d U-Maze | {c.key} | {_pm(c.b, 1)} | {_pm(c.a, 1)} | {_row(c, 1)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="train the missing cells of one task")
    r.add_argument("--task", choices=sorted(TASKS), required=True)
    r.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    r.add_argument("--keep", type=Path, default=None, help="keep the run folders under this runs dir")
    r.add_argument("--only", nargs="+", default=None, help="train only these labels (e.g. fm mmf)")
    sub.add_parser("table", help="print the table from the stored results")
    args = parser.parse_args()
    if args.cmd == "run":
        run(args.task, args.seeds, args.keep, args.only)
    print("\n\n".join([one_step_table(), table(), *filter(None, (mmf_table(task) for task in TASKS)),
                       "maze2d (normalized score, higher is better):", maze2d_table(), steps_table()]))


if __name__ == "__main__":
    main()
