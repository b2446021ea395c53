"""The committed study records (benchmarks/records/<topic>/) as per-seed values, and the paired
families of the tables the study scripts print.

Why here and not in the scripts: docs/findings.md quotes these comparisons with a verdict, and a
verdict depends on the family it is adjusted in. With the families defined once, a script's table
and the docs call a comparison separable by the same rows and the same Holm adjustment. Each
function's family is one printed table (which table: its docstring). Lower is better for every
study metric here (distances), so `mmf` − X < 0 reads "mmf better".
"""

from __future__ import annotations

import json
from pathlib import Path

from ..planning.conditions import STANDARD
from .paired import Comparison, family
from .report import TrainKey, eval_id, load_record, load_report_config, resolved_task_config

REFERENCE = "mmf"
LOWER_IS_BETTER = ("worse", "better")  # the verdict's word for a − b > 0 and < 0
# the tangent study's λ levels: (conditional-tangent label, model-tangent label)
LEVELS = {"λ = 0": ("meanflow", "meanflow-tmodel"), "λ warm-up": ("mmf-paper", "mmf"),
          "λ = 1": ("mmf-full-tcond", "mmf-full")}
TANGENT_TASKS = ("toy2d", "motion", "digits")
TANGENT_LABELS = ["fm"] + [label for pair in LEVELS.values() for label in pair]
# generalization conditions scored against the same data as the tangent study's full-data runs
# (toy2d's held-out square is scored against its 7 trained squares only), whose change from all
# the data is a table of its own; MeanFlow is the baseline each variant's lead is measured against
CHANGE_CONDITIONS = {"toy2d": ["N=256", "N=4096"], "motion": ["1/64 of episodes", "held-out speed"]}
CHANGE_BASELINE = "meanflow"


def _records(folder: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))]


def _steps(key: str) -> int:
    return int(key.split("-")[0])


# -- the tangent study (benchmarks/records/tangent_study/<task>/<label>-s<seed>.json) -------------------
def tangent_values(folder: Path) -> dict[str, dict[int, float]]:
    """label -> {seed: one-step metric}; `fm` also as `fm@1`, and `fm@k` from the runs that kept
    the metric at k Euler steps."""
    out: dict[str, dict[int, float]] = {}
    for r in _records(folder):
        out.setdefault(r["variant"], {})[r["seed"]] = float(r["metric"])
        if r["variant"] == "fm":
            for k, v in {"1-step": r["metric"], **r.get("by_steps", {})}.items():
                out.setdefault(f"fm@{_steps(k)}", {})[r["seed"]] = float(v)
    return out


def tangent_family(root: Path) -> list[Comparison]:
    """`tangent_study.py table`'s table: conditional minus model tangent at each λ, every task in
    one table (key: (task, level)); > 0 is the model tangent better."""
    rows = []
    for task in TANGENT_TASKS:
        values = tangent_values(Path(root) / task)
        for level, (cond, model) in LEVELS.items():
            if cond in values and model in values and len(set(values[cond]) & set(values[model])) > 1:
                rows.append(((task, level), values[cond], values[model]))
    return family("tangent study: conditional − model", rows, "model")


def tangent_mmf_family(root: Path, task: str) -> list[Comparison]:
    """`tangent_study.py table`'s one-step `mmf` minus each other label, one table per task
    (key: the label)."""
    values = tangent_values(Path(root) / task)
    rows = [(label, values[REFERENCE], values[label]) for label in TANGENT_LABELS
            if label != REFERENCE and label in values and REFERENCE in values]
    return family(f"tangent study {task}: {REFERENCE} − each", rows, REFERENCE, LOWER_IS_BETTER)


def maze2d_tangent_values(store: Path | None = None) -> dict[str, dict[int, float]]:
    """label -> {seed: in-distribution normalized score} of the standard report's stored runs
    (higher is better), for the tangent study's labels; `store`: the records folder (default: the
    preset's, benchmarks/records/reports/standard/results/)."""
    cfg = load_report_config("standard", overrides=[] if store is None else [f"store={json.dumps(str(store))}"])
    out: dict[str, dict[int, float]] = {}
    for label in TANGENT_LABELS[1:]:
        for seed in cfg.seeds:
            key = TrainKey(label, seed)
            record = load_record(cfg, key)
            wanted = eval_id(cfg, resolved_task_config(cfg, key)[1], STANDARD, None)
            if record is not None and wanted in record["scores"]:
                out.setdefault(label, {})[seed] = record["scores"][wanted]["score_mean"]
    return out


def maze2d_tangent_family(values: dict[str, dict[int, float]]) -> list[Comparison]:
    """`tangent_study.py table`'s maze2d table: model minus conditional tangent at each λ (key: the
    level; higher is better, so > 0 is the model tangent better)."""
    rows = [(level, values[model], values[cond]) for level, (cond, model) in LEVELS.items()
            if cond in values and model in values and len(set(values[cond]) & set(values[model])) > 1]
    return family("tangent study maze2d: model − conditional", rows, "model")


# -- generalization (benchmarks/records/generalization/<task>/) -----------------------------------------
def generalization_values(folder: Path, metric: str) -> dict[tuple[str, str], dict[int, float]]:
    """(condition, label) -> {seed: value}; `fm` is a row per Euler step count its record holds
    (`fm@1`, `fm@4`), every other variant its one-step value."""
    out: dict[tuple[str, str], dict[int, float]] = {}
    for r in _records(folder):
        if metric not in r:
            continue
        value = r[metric]
        if not isinstance(value, dict):
            out.setdefault((r["condition"], r["variant"]), {})[r["seed"]] = float(value)
            continue
        steps = sorted(_steps(k) for k in value) if r["variant"] == "fm" else [1]
        for k in steps:
            label = f"fm@{k}" if r["variant"] == "fm" else r["variant"]
            out.setdefault((r["condition"], label), {})[r["seed"]] = float(value[f"{k}-step"])
    return out


def _order(keys, first: list[str]) -> list[str]:
    """`first`'s names that occur, then the rest as they come."""
    keys = list(dict.fromkeys(keys))
    return [k for k in first if k in keys] + [k for k in keys if k not in first]


def generalization_family(folder: Path, metric: str, words: tuple[str, str] = LOWER_IS_BETTER,
                          conditions: list[str] = (), labels: list[str] = ()) -> list[Comparison]:
    """`generalization.py table`'s paired table of `metric` for one task: `mmf` minus each other
    label under each condition (key: (condition, label)); `conditions` and `labels` give the
    printed order."""
    rows = reference_rows(generalization_values(folder, metric), list(conditions), list(labels))
    return family(f"generalization {Path(folder).name}: {metric}, {REFERENCE} − each", rows, REFERENCE, words)


def reference_rows(values: dict, groups: list = (), labels: list = ()) -> list:
    """(key, reference's values, other's values) for `mmf` against each other label within each group
    of `values` ((group, label) -> {seed: value}), where the two share a seed; `groups` and `labels`
    give the order."""
    rows = []
    for group in _order([g for g, _ in values], list(groups)):
        ref = values.get((group, REFERENCE))
        for label in _order([v for g, v in values if g == group], list(labels)):
            other = values.get((group, label))
            if label != REFERENCE and ref and other and set(ref) & set(other):
                rows.append(((group, label), ref, other))
    return rows


def lead(values: dict[str, dict[int, float]], label: str, baseline: str = CHANGE_BASELINE) -> dict[int, float]:
    """{seed: label's value minus the baseline's} on the seeds both have (< 0: label ahead)."""
    a, b = values.get(label, {}), values.get(baseline, {})
    return {s: a[s] - b[s] for s in sorted(set(a) & set(b))}


def change_family(root: Path, task: str, labels: list[str] = ()) -> list[Comparison]:
    """`generalization.py table`'s change table: each variant's lead over MeanFlow under a condition
    minus the same lead with all the data (the tangent study's runs), paired on seed (key:
    (condition, label); < 0: the lead grows with the condition)."""
    full = tangent_values(Path(root) / "tangent_study" / task)
    by = generalization_values(Path(root) / "generalization" / task, "swd")
    rows = []
    for condition in CHANGE_CONDITIONS[task]:
        here = {label: v for (c, label), v in by.items() if c == condition}
        for label in _order(here, list(labels)):
            if label == CHANGE_BASELINE or label not in full:
                continue
            a, b = lead(here, label), lead(full, label)
            if len(set(a) & set(b)) > 1:
                rows.append(((condition, label), a, b))
    return family(f"generalization {task}: change of each lead over {CHANGE_BASELINE}", rows, "lead",
                  ("shrinks", "grows"))


# -- cifar-small (benchmarks/records/cifar_small/<variant>-s<seed>.json) ---------------------------------
def cifar_values(folder: Path) -> dict[str, dict[int, float]]:
    """`variant@k` -> {seed: Fréchet distance with k network evaluations}."""
    out: dict[str, dict[int, float]] = {}
    for r in _records(folder):
        for k, v in r["fd"].items():
            out.setdefault(f"{r['variant']}@{_steps(k)}", {})[r["seed"]] = float(v)
    return out


def cifar_family(folder: Path, reference: str = "mmf@1") -> list[Comparison]:
    """`cifar_small.py table`'s paired tables: one-step `reference` minus one-step `meanflow`
    (unless it is the reference) and `fm` at every step count (key: the other's label); one table
    for `mmf@1`, one for `meanflow@1`."""
    values = cifar_values(folder)
    others = [v for v in ("meanflow@1",) if v != reference]
    others += sorted((v for v in values if v.startswith("fm@")), key=lambda v: _steps(v.split("@")[1]))
    rows = [(label, values[reference], values[label]) for label in others
            if reference in values and len(set(values[reference]) & set(values[label])) > 1]
    return family(f"cifar-small: {reference} − each", rows, reference.split("@")[0], LOWER_IS_BETTER)


# -- the toy2d data-size grid (benchmarks/records/toy2d_datasize/<label>-N<size>-s<seed>.json) -----------
def datasize_values(folder: Path) -> dict[tuple[int, str], dict[int, float]]:
    """(training-set size N, label) -> {seed: one-step sliced Wasserstein distance}."""
    out: dict[tuple[int, str], dict[int, float]] = {}
    for r in _records(folder):
        out.setdefault((int(r["size"]), r["variant"]), {})[r["seed"]] = float(r["swd"]["1-step"])
    return out


def datasize_floors(folder: Path) -> dict[int, list[float]]:
    """N -> each record's distance of the training set itself to the fresh points (the floor)."""
    out: dict[int, list[float]] = {}
    for r in _records(folder):
        out.setdefault(int(r["size"]), []).append(float(r["swd_training_set"]))
    return out


def datasize_family(folder: Path, labels: list[str] = ()) -> list[Comparison]:
    """`toy2d_datasize.py table`'s paired table: `mmf` minus each other label at each N (key: (N,
    label)); the whole table is one family."""
    values = datasize_values(folder)
    rows = reference_rows(values, sorted({n for n, _ in values}), list(labels))
    return family(f"toy2d data size: one-step distance, {REFERENCE} − each", rows, REFERENCE, LOWER_IS_BETTER)


# -- the Push-T grid (benchmarks/records/pusht/records/<label>-e<episodes>-s<seed>.json) ------------------
PUSHT_LABELS = ["mmf", "fm", "meanflow", "mmf-full", "mmf-paper"]


def pusht_last_mean(results: dict) -> float:
    """A run's mean test score over its last evaluations (runs before the key was renamed stored it
    as `mean_last10_test_score`)."""
    return results.get("mean_last_test_score", results.get("mean_last10_test_score"))


def pusht_values(folder: Path) -> dict[tuple[int, str], dict[int, float]]:
    """(training episodes, label) -> {seed: test score of the weights chosen on the selection starts}."""
    out: dict[tuple[int, str], dict[int, float]] = {}
    for r in _records(folder):
        out.setdefault((int(r["episodes"]), r["label"]), {})[r["seed"]] = float(r["results"]["selected_test_score"])
    return out


def pusht_family(folder: Path, episodes: int) -> list[Comparison]:
    """`pusht_grid.py table`'s paired table of one training-set size: `mmf` minus each other variant
    (key: (episodes, label)); higher is better, each size's table is one family, and a variant
    with fewer than two seeds shared with `mmf` is left out until it has them."""
    values = {k: v for k, v in pusht_values(folder).items() if k[0] == episodes}
    rows = [row for row in reference_rows(values, [episodes], PUSHT_LABELS) if len(set(row[1]) & set(row[2])) > 1]
    return family(f"Push-T, {episodes} episodes: chosen weights' test score, {REFERENCE} − each", rows, REFERENCE)
