"""`mmftraj report ood|lowdata`: train the grid (objective variants × split or data fraction ×
seeds), score every run under its split's conditions, and write report.md / report.csv / plots.

Why a grid runner and not a script: the claim under test (MMF is stable, data-efficient and robust)
needs every variant trained on the same data with the same seeds, several seeds, numbers with
uncertainty and paired comparisons. Runs are ordinary `runs/<task>/<report>/<run>/` directories:
a finished one (results.json, same config) is reused, an interrupted one resumes from its last
checkpoint (the trainer resumes exactly), and each condition's score is cached beside the run, so
an interrupted grid picks up where it stopped (the cells are run by grid.run_grid, the runner the
studies in benchmarks/ use too). Eval-only splits (dynamics, layout) share the full-data runs,
which are also the 100% point of the low-data sweep.

Aggregation is pure pandas on a per-run table (one row per run × condition): `summarize` (mean ±
s.e. over seeds), `paired_differences` (mmf − other on the same seed and split: t-interval, p and
Holm's verdict over the table, from paired.py) and `stability` (loss spikes and divergence from
each run's metrics.csv).
"""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from ..checkpoint import latest_checkpoint
from ..config import apply_overrides, from_dict, load_yaml, merge_dict, to_dict
from ..core import ModularMeanFlow
from ..core.objective import label_options, parse_label
from ..data.splits import check_fraction, load_split
from ..errors import UserError, choice_error
from ..io import atomic_write_text
from ..planning.conditions import evaluate_condition, split_conditions
from ..resources import ROOT as RESOURCES
from ..resources import resource_path
from ..run_folders import run_folder
from ..run_request import RunRequest, resolve
from ..runs import train_run
from ..runtime import use_threads
from ..tasks.maze2d import load_model
from .grid import run_grid, write_record
from .paired import ALPHA, holm, paired_test, verdict
from .provenance import overlaps
from .report_plots import plot_id_vs_ood, plot_loss_curves, plot_lowdata
from .stability import read_metrics, run_stability

KINDS = ("ood", "lowdata")
PRESETS = ("standard", "full")
REFERENCE = "mmf"


@dataclass
class OodConfig:
    splits: list[str] = field(default_factory=lambda: ["umaze-goal", "umaze-start", "umaze-dynamics", "umaze-layout"])


@dataclass
class LowDataConfig:
    fractions: list[float] = field(default_factory=lambda: [0.01, 0.05, 0.1, 0.25, 1.0])
    # which episodes a fraction keeps (nested across fractions): None draws them from each run's
    # training seed, so intervals include which data was seen; a number gives every seed one subset
    subset_seed: int | None = None


@dataclass
class ReportConfig:
    name: str = "report"  # runs go to <runs_dir>/<task>/<name>/<run>/
    task: str = "maze2d"
    preset: str | None = "umaze"  # the task's preset (a maze)
    task_config: str | None = None  # YAML overlaid on the task's config for every run
    overrides: list[str] = field(default_factory=list)  # key=value overrides for every run
    # objective variants or labels (`meanflow-tmodel`: a variant with the other tangent)
    variants: list[str] = field(default_factory=lambda: ["fm", "meanflow", "mmf", "mmf-full"])
    reference: str = REFERENCE  # paired differences are reference minus each other variant
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    episodes: int = 20  # evaluation episodes per run and condition
    eval_seed: int = 1000  # episode i of every condition uses eval_seed + i
    eval_steps: int | None = None  # network evaluations per plan; None: the task's default per variant
    # Euler steps at which `fm` is scored, each its own row (`fm@1`, `fm@16`); [] : the task's fm_steps
    fm_steps: list[int] = field(default_factory=list)
    store: str | None = None  # folder of per-run results (one small JSON each, meant to be committed)
    out: str | None = None  # reports go to <out>/<kind>/; None: <runs_dir>/<task>/<name>/<kind>/
    ood: OodConfig = field(default_factory=OodConfig)
    lowdata: LowDataConfig = field(default_factory=LowDataConfig)
    spike_factor: float = 3.0  # a logged mse above this × the median of the 5 before it is a spike
    confidence: float = 0.95


def load_report_config(preset: str | None = None, config_file: str | Path | None = None, overrides=(),
                       task: str | None = None) -> ReportConfig:
    """Defaults ← configs/report-<preset>.yaml ← --config FILE ← --set overrides ← --task."""

    cfg = ReportConfig()
    if preset is not None:
        if preset not in PRESETS:
            raise choice_error("report preset", preset, PRESETS)
        cfg = from_checkout(merge_dict(cfg, load_yaml(resource_path("configs", f"report-{preset}.yaml"))))
    if config_file is not None:
        cfg = merge_dict(cfg, load_yaml(config_file))
    cfg = apply_overrides(cfg, list(overrides))
    if task is not None:
        cfg.task = task
    for v in cfg.variants:
        parse_label(v)
    if cfg.reference not in cfg.variants:
        raise UserError(f"reference {cfg.reference!r} is not among the variants {cfg.variants}")
    if any(k < 1 for k in cfg.fm_steps):
        raise UserError(f"fm_steps must be at least 1 each, got {cfg.fm_steps}")
    if len(set(cfg.seeds)) < 2:
        raise UserError(f"a report needs at least 2 distinct seeds for its error bars, got {cfg.seeds}")
    if cfg.episodes < 1:
        raise UserError(f"episodes must be at least 1, got {cfg.episodes}")
    if not 0 < cfg.confidence < 1:
        raise UserError(f"confidence must be in (0, 1), got {cfg.confidence}")
    return cfg


def checkout_root() -> Path | None:
    """The repository this package runs from (an editable install or PYTHONPATH), whose
    benchmarks/records/ holds the committed report records; None for an installed wheel, which
    ships no records."""
    root = RESOURCES.parents[1]
    return root if (root / "pyproject.toml").is_file() and (root / "benchmarks").is_dir() else None


def from_checkout(cfg: ReportConfig) -> ReportConfig:
    """A preset's `store` and `out` name folders of the repository: found there from any current
    folder (shown relative when under it, so a report written at the root reads as before).
    Without a checkout they stay relative to the current folder."""
    root = checkout_root()
    if root is not None:
        for name in ("store", "out"):
            value = getattr(cfg, name)
            if value is not None and not Path(value).is_absolute():
                setattr(cfg, name, _shown(root / value))
    return cfg


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


# -- the grid ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class TrainKey:
    """What a training run depends on beyond the shared config."""

    variant: str
    seed: int
    split: str | None = None  # a split that changes the training data (a name or a YAML path, as given)
    fraction: float = 1.0

    @property
    def run_name(self) -> str:
        label = Path(self.split).stem if self.split else "all"
        return f"{self.variant}-{label}-f{self.fraction:g}-s{self.seed}"

    def overrides(self, subset_seed: int | None) -> list[str]:
        """The tangent when the variant label names one, and the data overrides (none for the full
        data, so plain runs need no split support)."""
        out = label_options(self.variant)[1]
        if self.split is not None:
            out.append(f"data.split={self.split}")
        if self.fraction != 1.0:
            drawn = self.seed if subset_seed is None else subset_seed
            out += [f"data.fraction={self.fraction!r}", f"data.subset_seed={drawn}"]
        return out


@dataclass(frozen=True)
class GridItem:
    key: TrainKey
    split: str  # report label: a split name, or "none" (full data, standard evaluation)
    conditions: tuple


def build_grid(kind: str, cfg: ReportConfig) -> list[GridItem]:
    """Every (training run, split, conditions) the report needs; runs shared where data agree."""

    if kind not in KINDS:
        raise choice_error("report", kind, KINDS)
    items = []
    if kind == "ood":
        if not cfg.ood.splits:
            raise UserError("ood.splits is empty; name at least one split")
        for name in cfg.ood.splits:
            split = load_split(name)
            conds = tuple(split_conditions(split))
            for variant in cfg.variants:
                for seed in cfg.seeds:
                    key = TrainKey(variant, seed, str(name) if split.changes_training else None)
                    items.append(GridItem(key, split.name, conds))
    else:
        if not cfg.lowdata.fractions:
            raise UserError("lowdata.fractions is empty")
        for f in cfg.lowdata.fractions:
            check_fraction(f)
        conds = tuple(split_conditions(None))
        for f in sorted(set(cfg.lowdata.fractions)):
            for variant in cfg.variants:
                for seed in cfg.seeds:
                    items.append(GridItem(TrainKey(variant, seed, None, float(f)), "none", conds))
    return items


# -- running ---------------------------------------------------------------------------------------------
def run_dir_of(cfg: ReportConfig, key: TrainKey, runs_dir: Path) -> Path:
    return run_folder(runs_dir, cfg.task, key.run_name, group=cfg.name)


def train_request(cfg: ReportConfig, key: TrainKey, runs_dir: Path = Path("runs"), progress: bool = True) -> RunRequest:
    """The run of `key` in this report's grid: resumed where it stopped, started where missing."""
    overrides = (*cfg.overrides, *key.overrides(cfg.lowdata.subset_seed))
    return RunRequest(cfg.task, cfg.preset, cfg.task_config, overrides, parse_label(key.variant)[0], seed=key.seed,
                      name=key.run_name, group=cfg.name, runs_dir=Path(runs_dir), resume=True, progress=progress)


def resolved_task_config(cfg: ReportConfig, key: TrainKey):
    return resolve(train_request(cfg, key))


def training_fields(task_cfg) -> dict:
    """The config sections a trained model depends on: everything but `eval`, which is applied at
    evaluation time (changing it re-scores runs, it does not retrain them)."""
    return {k: v for k, v in to_dict(task_cfg).items() if k != "eval"}


def ensure_trained(cfg: ReportConfig, key: TrainKey, runs_dir: Path, progress: bool = True):
    """Train the run unless a finished one with the same training config exists; resume a partial
    one. Returns (run_dir, "reused" | "resumed" | "trained", the resolved task config)."""

    request = train_request(cfg, key, runs_dir, progress)
    _, task_cfg = resolved = resolve(request)
    run_dir = run_dir_of(cfg, key, runs_dir)
    saved = run_dir / "config.yaml"
    if saved.is_file() and training_fields(from_dict(type(task_cfg), load_yaml(saved))) != training_fields(task_cfg):
        raise UserError(f"run {run_dir} was trained with a different config; give this report another name "
                        f"(--set name=...) or delete that run")
    if (run_dir / "results.json").is_file() and latest_checkpoint(run_dir) is not None:
        return run_dir, "reused", task_cfg
    status = "resumed" if latest_checkpoint(run_dir) is not None else "trained"

    train_run(request, resolved)
    return run_dir, status, task_cfg


# Eval fields added after scores were stored, at the value that behaves as before they existed:
# left out of a score's id at that value, so stored scores stay valid (and any other value re-scores).
EVAL_FIELDS_ADDED = {
    "goals": "layout",
    # closed-loop re-planning and disturbances (all off at these values)
    "replan_select": "selection", "fixed_noise": False, "blend": 1, "push_size": 0.0, "push_rate": 0.0,
    "action_noise": 0.0, "obs_noise": 0.0, "goal_move_at": 0, "smooth_start": "hold",
    "replan_goal_step": "settings", "lookahead": 1, "plan_velocity": "observed",
}


def eval_id(cfg: ReportConfig, task_cfg, condition, steps: int | None) -> str:
    """What one score depends on: the condition, the task's eval settings, episodes, seed, steps."""

    settings = {k: v for k, v in to_dict(task_cfg).get("eval", {}).items()
                if not (k in EVAL_FIELDS_ADDED and v == EVAL_FIELDS_ADDED[k])}
    settings = hashlib.sha1(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return f"{condition.key()}-{settings}-e{cfg.episodes}-s{cfg.eval_seed}-k{'task' if steps is None else steps}"


def score_steps(cfg: ReportConfig, key: TrainKey) -> list[int | None]:
    """The network evaluations per plan each run is scored at (None: the task's default)."""
    if cfg.eval_steps is not None:
        return [cfg.eval_steps]
    if key.variant == "fm" and cfg.fm_steps:
        return list(dict.fromkeys(cfg.fm_steps))
    return [None]


def row_label(cfg: ReportConfig, key: TrainKey, steps: int | None) -> str:
    """The variant as the tables show it: `fm@1` / `fm@16` when fm is scored at several k."""
    return f"{key.variant}@{steps}" if key.variant == "fm" and cfg.fm_steps and cfg.eval_steps is None else key.variant


def evaluate_run(cfg: ReportConfig, run_dir: Path, task_cfg, conditions, progress: bool = True,
                 steps: int | None = None) -> list[dict]:
    """Score the run's latest checkpoint under each condition with the task's current `eval`
    settings; cached per (condition, eval settings, episodes, seed, steps) beside the run."""

    todo, out = [], {}
    for c in conditions:
        path = run_dir / "report-eval" / f"{eval_id(cfg, task_cfg, c, steps)}.json"
        if path.is_file():
            out[c] = json.loads(path.read_text())
        else:
            todo.append((c, path))
    if todo:  # the evaluator yields one result per condition: each is saved as soon as it exists
        results = evaluator(cfg.task)(run_dir, task_cfg, [c for c, _ in todo], cfg, progress, steps)
        for (c, path), result in zip(todo, results, strict=True):
            atomic_write_text(path, json.dumps(result, indent=2) + "\n")
            out[c] = result
    return [dict(out[c], condition=c.name, group=c.group) for c in conditions]


def evaluator(task: str):
    if task not in EVALUATORS:
        raise UserError(f"task {task!r} has no report evaluation; tasks with one: {', '.join(EVALUATORS)}")
    return EVALUATORS[task]


def _maze2d_evaluate(run_dir: Path, current, conditions, cfg: ReportConfig, progress: bool, steps: int | None):
    net, task_cfg, normalizer = load_model(latest_checkpoint(run_dir))
    task_cfg.eval = copy.deepcopy(current.eval)  # the model from the checkpoint, the evaluation from now
    if task_cfg.train.threads > 0:  # evaluate with the threads the run trained with
        use_threads(task_cfg.train.threads)
    mode = ModularMeanFlow(task_cfg.objective).sampling_mode
    if steps is not None:
        task_cfg.eval.steps = steps
    elif mode == "euler":  # as `mmftraj eval`: flow matching needs several Euler steps
        task_cfg.eval.steps = task_cfg.eval.fm_steps
    for c in conditions:
        r = evaluate_condition(net, normalizer, task_cfg.eval, task_cfg.eval.env or task_cfg.data.env, mode, c,
                               cfg.episodes, cfg.eval_seed, progress)
        yield dict(r, evaluations=task_cfg.eval.steps)


EVALUATORS = {"maze2d": _maze2d_evaluate}


# -- stored per-run results: the grid accumulates across machines and sessions ----------------------------
# Where and how a run trained, not what it learned: a stored result counts whichever machine made it.
# compile_cpu and signal_grace_s came after the standard grid was stored; as machine fields they keep it valid.
MACHINE_FIELDS = ("device", "threads", "log_every", "ckpt_every", "keep_checkpoints", "compile", "compile_scope",
                  "compile_cpu", "signal_grace_s")


def training_hash(task_cfg) -> str:
    """Hash of what a stored run learned from (training fields less the machine's)."""
    fields = training_fields(task_cfg)
    fields["train"] = {k: v for k, v in fields.get("train", {}).items() if k not in MACHINE_FIELDS}
    return hashlib.sha1(json.dumps(fields, sort_keys=True, default=str).encode()).hexdigest()[:12]


def load_record(cfg: ReportConfig, key: TrainKey) -> dict | None:
    """The stored result of one run (None if the report has no store or the run has none yet)."""
    if cfg.store is None:
        return None
    path = Path(cfg.store) / f"{key.run_name}.json"
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
        record["scores"], record["training"]  # noqa: B018 - the fields every record has
    except (ValueError, KeyError, TypeError) as err:
        raise UserError(f"stored result {path} is not a report record ({err}); delete it to re-run that cell") from None
    return record


def save_record(cfg: ReportConfig, key: TrainKey, record: dict) -> None:
    write_record(Path(cfg.store) / f"{key.run_name}.json", record, sort_keys=True)


def new_record(cfg: ReportConfig, key: TrainKey, task_cfg, run_dir: Path) -> dict:
    """A run's training facts: what it is, how long it took, its stability and a thinned mse curve."""
    results = json.loads((run_dir / "results.json").read_text())
    metrics = read_metrics(run_dir / "metrics.csv")
    keep = (np.unique(np.linspace(0, len(metrics) - 1, min(len(metrics), 100)).round().astype(int))
            if len(metrics) else [])
    col = "mse" if "mse" in metrics.columns else "loss"
    curve = {"step": [int(v) for v in metrics["step"].iloc[keep]] if len(metrics) else [],
             "mse": [float(v) for v in pd.to_numeric(metrics[col], errors="coerce").iloc[keep]] if len(metrics) else []}
    return {"report": cfg.name, "run": key.run_name, "variant": key.variant, "tangent": task_cfg.objective.tangent,
            "seed": key.seed, "split": key.split, "fraction": key.fraction, "training": training_hash(task_cfg),
            "train_time_s": results.get("train_time_s"), "parameters": results.get("parameters"),
            "windows": results.get("windows"), "stability": run_stability(run_dir / "metrics.csv", cfg.spike_factor),
            "curve": curve, "scores": {}}


FEW_RUNS = 3  # a grid trains more runs than this only when told to (confirmed / --train): hours each on a CPU


def run_report(kind: str, cfg: ReportConfig, runs_dir: Path = Path("runs"), out: Path | None = None,
               progress: bool = True, train: bool = True, shard: tuple[int, int] = (0, 1),
               confirmed: bool = False) -> dict:
    """Score the grid, training what is missing, then write the report; returns {file name: Path}.

    With `cfg.store`, each finished run's scores are kept there as one small JSON: later calls
    (any machine, any session) reuse them without the run folders. `train=False` builds the
    report from what is stored and lists the missing cells; `shard=(i, n)` trains only every
    n-th run, so n processes can share one grid. More than FEW_RUNS runs to train are refused
    (one line: how many, and the hours the stored runs' speed makes of them) unless `confirmed`."""

    console = Console()
    evaluator(cfg.task)  # before any training: a task the report cannot score is an error now
    if not train and cfg.store is None:
        raise UserError("--no-train rebuilds a report from stored results; this report has no store (--set store=DIR)")
    if cfg.store is not None and not Path(cfg.store).is_dir():
        console.print(f"no stored results in {cfg.store}{_no_checkout_note()}", soft_wrap=True, highlight=False)
    grid = build_grid(kind, cfg)
    keys = list(dict.fromkeys(item.key for item in grid))
    needs = {k: list(dict.fromkeys(c for item in grid if item.key == k for c in item.conditions)) for k in keys}
    console.print(f"[bold]report {kind}[/]: {len(grid)} (run, split) cells over {len(keys)} training runs")
    stored = {}
    for key in keys:
        _, task_cfg = resolved_task_config(cfg, key)
        record = load_record(cfg, key)
        if record is not None and record["training"] != training_hash(task_cfg):
            raise UserError(f"stored result {Path(cfg.store) / key.run_name}.json was trained with a different config; "
                            "give this report another store (--set store=...) or delete that file")
        stored[key] = task_cfg, record
    if train and not confirmed:
        check_training_size(kind, cfg, keys, needs, stored, runs_dir, shard)
    ids = {key: {(c, k): eval_id(cfg, stored[key][0], c, k) for c in needs[key] for k in score_steps(cfg, key)}
           for key in keys}

    def make(key: TrainKey, record: dict | None) -> dict:
        """Train (or reuse, or resume) the run, then score it under every condition it is still missing."""
        t0 = time.perf_counter()
        run_dir, status, task_cfg = ensure_trained(cfg, key, runs_dir, progress)
        record = record or new_record(cfg, key, task_cfg, run_dir)
        for k in score_steps(cfg, key):
            for c, r in zip(needs[key], evaluate_run(cfg, run_dir, task_cfg, needs[key], progress, k), strict=True):
                record["scores"][ids[key][c, k]] = {n: v for n, v in r.items() if n not in ("condition", "group")}
        console.print(f"[{keys.index(key) + 1}/{len(keys)}] {key.run_name}: {status} and scored "
                      f"({time.perf_counter() - t0:.0f} s)")
        return record

    records, missing = run_grid(
        keys, make, load=lambda key: stored[key][1], save=None if cfg.store is None else partial(save_record, cfg),
        complete=lambda key, record: all(w in record["scores"] for w in ids[key].values()), shard=shard, train=train)
    rows = []
    for item in grid:
        record = records.get(item.key)
        if record is None:
            continue
        for k in score_steps(cfg, item.key):
            for c in item.conditions:
                r = record["scores"][ids[item.key][c, k]]
                stab = record["stability"]
                rows.append({"split": item.split, "condition": c.name, "group": c.group,
                             "fraction": item.key.fraction, "variant": row_label(cfg, item.key, k),
                             "tangent": record["tangent"], "seed": item.key.seed,
                             "score": r["score_mean"], "score_episode_se": r["score_se"],
                             "success_rate": r["success_rate"], "episodes": r["episodes"], "env": r["env"],
                             "evaluations": r.get("evaluations"), "final_mse": stab["final_mse"],
                             "spikes": stab["spikes"], "diverged": stab["diverged"],
                             "train_time_s": record.get("train_time_s"), "run": f"{cfg.name}/{item.key.run_name}"})
    if missing:
        console.print(f"{len(missing)} of {len(keys)} runs have no stored result yet: "
                      + ", ".join(k.run_name for k in missing[:8]) + (" ..." if len(missing) > 8 else ""))
    if not rows:
        console.print("nothing scored yet: no report written")
        return {}
    per_run = pd.DataFrame(rows)
    out = Path(out) if out is not None else Path(cfg.out or Path(runs_dir) / cfg.task / cfg.name) / kind
    curves = {k.run_name: pd.DataFrame(r["curve"]) for k, r in records.items()}
    paths = write_report(kind, cfg, per_run, curves, out, [k.run_name for k in missing])
    print_summary(kind, summarize(per_run), paired_differences(per_run, cfg.reference, cfg.confidence), console,
                  cfg.reference)
    return paths


def _no_checkout_note() -> str:
    if checkout_root() is not None:
        return ""
    return (" (this mmftraj is installed without its repository, whose benchmarks/records/ holds the committed "
            "results; run from a checkout of it, or give --set store=DIR)")


def _complete(cfg: ReportConfig, key: TrainKey, needs, task_cfg, record) -> bool:
    wanted = [eval_id(cfg, task_cfg, c, k) for c in needs[key] for k in score_steps(cfg, key)]
    return record is not None and all(w in record["scores"] for w in wanted)


def check_training_size(kind: str, cfg: ReportConfig, keys, needs, stored, runs_dir: Path,
                        shard: tuple[int, int]) -> None:
    """Refuse (one line) to train more than FEW_RUNS runs unasked: a grid is hours on a CPU, and a
    report run from the wrong folder or with another setting would otherwise start on all of it."""
    todo = [(key, stored[key][0]) for i, key in enumerate(keys) if i % shard[1] == shard[0]
            and not _complete(cfg, key, needs, *stored[key]) and not _finished(cfg, key, runs_dir)]
    if len(todo) <= FEW_RUNS:
        return
    steps = sum(task_cfg.train.steps - _trained_steps(run_dir_of(cfg, key, runs_dir)) for key, task_cfg in todo)
    raise UserError(f"report {kind} would train {len(todo)} of its {len(keys)} runs ({steps} steps in all"
                    f"{_hours(steps, [r for _, r in stored.values() if r is not None], todo[0][1].train.threads)})"
                    f"{_no_checkout_note()}; "
                    f"pass --train to start, or --no-train to build the report from the stored results")


def _finished(cfg: ReportConfig, key: TrainKey, runs_dir: Path) -> bool:
    """A run folder ensure_trained would reuse rather than train."""
    run_dir = run_dir_of(cfg, key, runs_dir)
    return (run_dir / "results.json").is_file() and latest_checkpoint(run_dir) is not None


def _trained_steps(run_dir: Path) -> int:
    ckpt = latest_checkpoint(run_dir)
    return int(ckpt.name.split("_")[-1]) if ckpt is not None else 0


def _hours(steps: int, records: list[dict], threads: int) -> str:
    """`, about N CPU-hours` from the median seconds per step of the grid's stored runs (their
    train_time_s over their last logged step, on whichever machines trained them); evaluation is
    not counted. Without stored runs there is nothing to time, and the message says so."""
    rates = [r["train_time_s"] / r["curve"]["step"][-1] for r in records
             if r.get("train_time_s") and r.get("curve", {}).get("step")]
    if not rates:
        return "; no stored run of this grid to time them by"
    rate = float(np.median(rates))
    unit = "CPU-hours (train.threads=1)" if threads == 1 else f"hours at train.threads={threads}"
    return (f", about {steps * rate / 3600:.1f} {unit} at {rate:.3g} s a step, the median of {len(rates)} stored "
            f"runs' train_time_s per step on the machines that trained them; evaluation not counted")


def print_summary(kind: str, summary: pd.DataFrame, paired: pd.DataFrame, console, reference: str = REFERENCE) -> None:
    """The score table (mean ± s.e. over seeds) with mmf's paired difference, its raw interval
    beside the verdict of the Holm-adjusted test over the paired table (as report.md has them)."""

    table = Table(title=f"report {kind}: normalized score, mean ± s.e. over seeds")
    for col in ("split", "condition", "fraction", "variant", "score", "success", f"{reference} − this (CI)",
                "verdict (Holm)"):
        table.add_column(col, justify="right" if col not in ("split", "condition", "variant", "verdict (Holm)")
                         else "left")
    diffs = {(r.split, r.condition, r.fraction, r.comparison.split(" - ")[1]): r for r in paired.itertuples()}
    for r in summary.itertuples():
        d = diffs.get((r.split, r.condition, r.fraction, r.variant))
        diff = (f"{d.diff_mean:+.1f} [{d.ci_low:.1f}, {d.ci_high:.1f}]"
                if d is not None and np.isfinite(d.ci_low) else "")
        table.add_row(r.split, r.condition, f"{r.fraction:g}", r.variant, _pm(r.score_mean, r.score_se),
                      f"{100 * r.success_mean:.0f}%", diff, d.verdict if d is not None else "")
    console.print(table)


# -- aggregation (pure pandas) -------------------------------------------------------------------------
GROUP = ["split", "condition", "group", "fraction"]


def summarize(per_run: pd.DataFrame) -> pd.DataFrame:
    """Mean ± standard error over seeds for each (split, condition, fraction, variant)."""
    g = per_run.groupby(GROUP + ["variant"], sort=False)
    out = g.agg(n=("seed", "nunique"), score_mean=("score", "mean"), score_sd=("score", "std"),
                success_mean=("success_rate", "mean"), spikes=("spikes", "sum"), diverged=("diverged", "sum"))
    out["score_se"] = out["score_sd"] / np.sqrt(out["n"])
    return out.drop(columns="score_sd").reset_index()


def paired_differences(per_run: pd.DataFrame, reference: str = REFERENCE, confidence: float = 0.95) -> pd.DataFrame:
    """Score of `reference` minus each other variant, paired on seed within (split, condition,
    fraction): mean, s.e., a t-interval and a two-sided t-test (p) over the pairs, each row's own.

    The table is one family: its verdict is Holm's (p_holm) at ALPHA, so `better`/`worse` needs
    the adjusted test to reject. A row that repeats another's measurement (the same runs under
    the same condition with the same scores, as the full-data `standard` condition under every
    eval-only split) is the same test, `test` numbers them, and it counts once in the family."""
    ref = per_run[per_run["variant"] == reference]
    cols = ["split", "condition", "group", "fraction", "comparison", "n", "diff_mean", "diff_se", "ci_low", "ci_high",
            "p", "p_holm", "verdict", "test"]
    if ref.empty:
        return pd.DataFrame(columns=cols)
    rows, tests = [], []
    for other in [v for v in per_run["variant"].unique() if v != reference]:
        merged = ref.merge(per_run[per_run["variant"] == other], on=GROUP + ["seed"], suffixes=("_ref", "_other"))
        for keys, g in merged.groupby(GROUP, sort=False):
            t = paired_test((g["score_ref"] - g["score_other"]).to_numpy(dtype=float), confidence)
            rows.append(dict(zip(GROUP, keys, strict=True), comparison=f"{reference} - {other}", n=t.n,
                             diff_mean=t.mean, diff_se=t.se, ci_low=t.low, ci_high=t.high, p=t.p))
            tests.append(_measurement(other, keys, g))
    family = {m: i + 1 for i, m in enumerate(dict.fromkeys(tests))}  # measurement -> test number
    p_of = {m: row["p"] for m, row in zip(tests, rows, strict=True)}
    adjusted = dict(zip(family, holm([p_of[m] for m in family]), strict=True))
    for row, m in zip(rows, tests, strict=True):
        row.update(p_holm=adjusted[m], verdict=verdict(row["diff_mean"], adjusted[m], reference), test=family[m])
    return pd.DataFrame(rows, columns=cols)


def _measurement(other: str, keys: tuple, g: pd.DataFrame) -> tuple:
    """What makes two rows of the paired table one test: the variant compared, the condition, and
    per seed the runs and scores (the split only where the table does not name the runs)."""
    split, condition, group, fraction = keys
    by_seed = g.sort_values("seed")
    runs = tuple(zip(by_seed["run_ref"], by_seed["run_other"], strict=True)) if "run_ref" in g else split
    scores = tuple(zip(by_seed["seed"], by_seed["score_ref"], by_seed["score_other"], strict=True))
    return other, condition, group, fraction, runs, scores


# -- writing -----------------------------------------------------------------------------------------------
def _p(p: float) -> str:
    if not np.isfinite(p):
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _pm(mean, se, digits=1) -> str:
    if not np.isfinite(mean):
        return "–"
    return f"{mean:.{digits}f} ± {se:.{digits}f}" if np.isfinite(se) else f"{mean:.{digits}f}"


def _markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def write_report(kind: str, cfg: ReportConfig, per_run: pd.DataFrame, curves: dict[str, pd.DataFrame], out: Path,
                 missing: list[str] = ()) -> dict:
    """report.csv (summary), per_run.csv, paired.csv, report.md and the plots under `out`."""

    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(per_run)
    paired = paired_differences(per_run, cfg.reference, cfg.confidence)
    paths = {"report.csv": out / "report.csv", "per_run.csv": out / "per_run.csv", "paired.csv": out / "paired.csv",
             "report.md": out / "report.md", "losses.png": out / "losses.png"}
    for name, df in (("report.csv", summary), ("per_run.csv", per_run), ("paired.csv", paired)):
        atomic_write_text(paths[name], df.to_csv(index=False, float_format="%.6g"))
    if kind == "lowdata":
        paths["lowdata.png"] = out / "lowdata.png"
        plot_lowdata(summary, paths["lowdata.png"])
    else:
        paths["ood.png"] = out / "ood.png"
        plot_id_vs_ood(summary, paths["ood.png"])
    plot_loss_curves(curves, paths["losses.png"], cfg.spike_factor)
    atomic_write_text(paths["report.md"], report_markdown(kind, cfg, per_run, summary, paired, curves, to_dict(cfg),
                                                          list(missing)))
    return paths


def held_out_note(cfg: ReportConfig) -> str:
    """Whether the report's seeds are held out from the choice of its settings (configs/provenance.yaml)."""
    presets = [f"{cfg.task}-{cfg.preset}" if cfg.preset else cfg.task, f"report-{cfg.name}"]
    notes = overlaps(presets, cfg.seeds, range(cfg.eval_seed, cfg.eval_seed + cfg.episodes))
    if not notes:
        return (f"**Held out:** no training or evaluation seed of this report chose its settings "
                f"({', '.join(f'`{p}`' for p in presets)}; configs/provenance.yaml).")
    return "**Not held out from tuning:** " + "; ".join(notes) + "."


def report_markdown(kind, cfg, per_run, summary, paired, runs, cfg_dict, missing=()) -> str:
    level = f"{100 * cfg.confidence:g}%"
    table = summary.assign(score=[_pm(m, s) for m, s in zip(summary.score_mean, summary.score_se, strict=True)],
                           success=[f"{100 * v:.0f}%" for v in summary.success_mean])
    table = table[["split", "condition", "group", "fraction", "variant", "n", "score", "success", "spikes", "diverged"]]
    tangents = per_run.groupby("variant")["tangent"].first().to_dict() if "tangent" in per_run else {}
    diff = paired.assign(difference=[_pm(m, s) for m, s in zip(paired.diff_mean, paired.diff_se, strict=True)],
                         ci=[f"[{lo:.1f}, {hi:.1f}]" if np.isfinite(lo) else "–"
                             for lo, hi in zip(paired.ci_low, paired.ci_high, strict=True)])
    diff = diff.assign(**{"p": [_p(v) for v in paired.p], "p (Holm)": [_p(v) for v in paired.p_holm]})
    diff = diff[["split", "condition", "fraction", "comparison", "n", "difference", "ci", "p", "p (Holm)", "verdict"]]
    counts = paired["verdict"].value_counts().to_dict() if len(paired) else {}
    tests, raw = paired["test"].nunique(), paired.loc[paired["p"] < ALPHA, "test"].nunique()
    evals = per_run.groupby("variant", sort=False)["evaluations"].first().to_dict() if "evaluations" in per_run else {}
    gaps = (f"\n**Incomplete:** {len(missing)} training runs have no result yet and are left out: "
            f"{', '.join(missing)}. `mmftraj report {kind}` with the same settings trains them.\n" if missing else "")
    stab = per_run.drop_duplicates("run").groupby("variant").agg(runs=("run", "count"), spikes=("spikes", "sum"),
                                                                   diverged=("diverged", "sum"),
                                                                   final_mse=("final_mse", "median")).reset_index()
    pictures = "![score vs data fraction](lowdata.png)" if kind == "lowdata" else "![in-distribution vs OOD](ood.png)"
    return f"""# mmftraj report: {kind} ({cfg.task}, {cfg.preset or 'default'})

{held_out_note(cfg)}

Grid: variants {', '.join(cfg.variants)} × {'splits ' + ', '.join(cfg.ood.splits) if kind == 'ood'
        else 'data fractions ' + ', '.join(f'{f:g}' for f in sorted(set(cfg.lowdata.fractions)))} × seeds
{', '.join(map(str, cfg.seeds))}; {len(runs)} training runs, {cfg.episodes} evaluation episodes per run and
condition (seeds {cfg.eval_seed}…{cfg.eval_seed + cfg.episodes - 1}, the same for every run). Network
evaluations per plan: {', '.join(f'{k} {v}' for k, v in evals.items())}. Score: d4rl-normalized return
(mean over episodes per run, then mean ± s.e. over seeds); success: share of episodes that reached the goal.
Tangent of du/dt per variant: {', '.join(f'{k} {v}' for k, v in tangents.items() if not k.startswith('fm'))}.
{gaps}
## Scores (mean ± s.e. over seeds)

{_markdown(table)}

## Paired differences ({cfg.reference} minus each variant, same seed and split; {level} t-interval)

Verdicts: {', '.join(f'{v}: {n}' for v, n in counts.items()) or 'none'}. This table is one family of
{tests} distinct tests (a row repeating another's runs and scores is the same test): "better"/"worse"
only where the Holm-adjusted two-sided t-test, p (Holm), rejects at {ALPHA:g}; "not separable"
otherwise. The interval and p beside it are each row's own, unadjusted ({raw} of the {tests} tests
have p < {ALPHA:g} before adjustment).

{_markdown(diff)}

## Training stability

Spike: a logged mse above {cfg.spike_factor:g}× the median of the 5 logged values before it.
Diverged: a non-finite loss or gradient, or a final mse above {cfg.spike_factor:g}× the run's minimum.

{_markdown(stab.round(4))}

{pictures}

![training curves](losses.png)

Files: report.csv (this summary), paired.csv, per_run.csv (one row per run and condition).

<details><summary>report config</summary>

```json
{json.dumps(cfg_dict, indent=2)}
```
</details>
"""
