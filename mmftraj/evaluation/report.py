"""`mmftraj report ood|lowdata`: train the grid (objective variants × split or data fraction ×
seeds), score every run under its split's conditions, and write report.md / report.csv / plots.

Why a grid runner and not a script: the claim under test (MMF is stable, data-efficient and robust)
needs every variant trained on the same data with the same seeds, several seeds, numbers with
uncertainty and paired comparisons. Runs are ordinary `runs/<task>/<report>/<run>/` directories:
a finished one (results.json, same config) is reused, an interrupted one resumes from its last
checkpoint (the trainer resumes exactly), and each condition's score is cached beside the run, so
an interrupted grid picks up where it stopped. Eval-only splits (dynamics, layout) share the
full-data runs, which are also the 100% point of the low-data sweep.

Aggregation is pure pandas on a per-run table (one row per run × condition): `summarize` (mean ±
s.e. over seeds), `paired_differences` (mmf − other on the same seed and split, t-based CI) and
`stability` (loss spikes and divergence from each run's metrics.csv).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError, choice_error

KINDS = ("ood", "lowdata")
PRESETS = ("quick", "full")
REFERENCE = "mmf"


@dataclass
class OodConfig:
    splits: list[str] = field(default_factory=lambda: ["umaze-goal", "umaze-start", "umaze-dynamics", "umaze-layout"])


@dataclass
class LowDataConfig:
    fractions: list[float] = field(default_factory=lambda: [0.01, 0.05, 0.1, 0.25, 1.0])
    subset_seed: int = 0  # one subset per fraction for every variant and seed (nested)


@dataclass
class ReportConfig:
    name: str = "report"  # runs go to <runs_dir>/<task>/<name>/<run>/
    task: str = "maze2d"
    preset: str | None = "umaze"  # the task's preset (a maze)
    task_config: str | None = None  # YAML overlaid on the task's config for every run
    overrides: list[str] = field(default_factory=list)  # key=value overrides for every run
    variants: list[str] = field(default_factory=lambda: ["fm", "meanflow", "mmf", "mmf-full"])
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    episodes: int = 20  # evaluation episodes per run and condition
    eval_seed: int = 1000  # episode i of every condition uses eval_seed + i
    eval_steps: int | None = None  # network evaluations per plan; None: the task's default per variant
    ood: OodConfig = field(default_factory=OodConfig)
    lowdata: LowDataConfig = field(default_factory=LowDataConfig)
    spike_factor: float = 3.0  # a logged mse above this × the median of the 5 before it is a spike
    confidence: float = 0.95


def load_report_config(preset: str | None = None, config_file: str | Path | None = None, overrides=(),
                       task: str | None = None) -> ReportConfig:
    """Defaults ← configs/report-<preset>.yaml ← --config FILE ← --set overrides ← --task."""
    from ..config import apply_overrides, load_yaml, merge_dict
    from ..core.objective import VARIANTS
    from ..resources import resource_path

    cfg = ReportConfig()
    if preset is not None:
        if preset not in PRESETS:
            raise choice_error("report preset", preset, PRESETS)
        cfg = merge_dict(cfg, load_yaml(resource_path("configs", f"report-{preset}.yaml")))
    if config_file is not None:
        cfg = merge_dict(cfg, load_yaml(config_file))
    cfg = apply_overrides(cfg, list(overrides))
    if task is not None:
        cfg.task = task
    for v in cfg.variants:
        if v not in VARIANTS:
            raise choice_error("objective variant", v, VARIANTS)
    if len(set(cfg.seeds)) < 2:
        raise UserError(f"a report needs at least 2 distinct seeds for its error bars, got {cfg.seeds}")
    if cfg.episodes < 1:
        raise UserError(f"episodes must be at least 1, got {cfg.episodes}")
    if not 0 < cfg.confidence < 1:
        raise UserError(f"confidence must be in (0, 1), got {cfg.confidence}")
    return cfg


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

    def overrides(self, subset_seed: int) -> list[str]:
        """Data overrides; none for the full data, so plain runs need no split support."""
        out = []
        if self.split is not None:
            out.append(f"data.split={self.split}")
        if self.fraction != 1.0:
            out += [f"data.fraction={self.fraction!r}", f"data.subset_seed={subset_seed}"]
        return out


@dataclass(frozen=True)
class GridItem:
    key: TrainKey
    split: str  # report label: a split name, or "none" (full data, standard evaluation)
    conditions: tuple


def build_grid(kind: str, cfg: ReportConfig) -> list[GridItem]:
    """Every (training run, split, conditions) the report needs; runs shared where data agree."""
    from .conditions import split_conditions
    from .splits import check_fraction, load_split

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
    from ..run_folders import run_folder

    return run_folder(runs_dir, cfg.task, key.run_name, group=cfg.name)


def resolved_task_config(cfg: ReportConfig, key: TrainKey):
    from ..runs import resolve_config

    overrides = list(cfg.overrides) + key.overrides(cfg.lowdata.subset_seed)
    return resolve_config(cfg.task, cfg.preset, cfg.task_config, overrides, objective=key.variant, seed=key.seed)


def training_fields(task_cfg) -> dict:
    """The config sections a trained model depends on: everything but `eval`, which is applied at
    evaluation time (changing it re-scores runs, it does not retrain them)."""
    from ..config import to_dict

    return {k: v for k, v in to_dict(task_cfg).items() if k != "eval"}


def ensure_trained(cfg: ReportConfig, key: TrainKey, runs_dir: Path, progress: bool = True):
    """Train the run unless a finished one with the same training config exists; resume a partial
    one. Returns (run_dir, "reused" | "resumed" | "trained", the resolved task config)."""
    from ..checkpoint import latest_checkpoint
    from ..config import from_dict, load_yaml
    from ..runs import prepare_and_train

    module, task_cfg = resolved_task_config(cfg, key)
    run_dir = run_dir_of(cfg, key, runs_dir)
    saved = run_dir / "config.yaml"
    if saved.is_file() and training_fields(from_dict(type(task_cfg), load_yaml(saved))) != training_fields(task_cfg):
        raise UserError(f"run {run_dir} was trained with a different config; give this report another name "
                        f"(--set name=...) or delete that run")
    if (run_dir / "results.json").is_file() and latest_checkpoint(run_dir) is not None:
        return run_dir, "reused", task_cfg
    status = "resumed" if latest_checkpoint(run_dir) is not None else "trained"
    prepare_and_train(task=cfg.task, preset=cfg.preset, config_file=cfg.task_config,
                      overrides=list(cfg.overrides) + key.overrides(cfg.lowdata.subset_seed),
                      objective=key.variant, seed=key.seed, name=key.run_name, group=cfg.name,
                      runs_dir=Path(runs_dir), resume=True, progress=progress)
    return run_dir, status, task_cfg


def evaluate_run(cfg: ReportConfig, run_dir: Path, task_cfg, conditions, progress: bool = True) -> list[dict]:
    """Score the run's latest checkpoint under each condition with the task's current `eval`
    settings; cached per (condition, eval settings, episodes, seed, steps) beside the run."""
    import hashlib

    from ..config import to_dict
    from ..io import atomic_write_text

    steps = "task" if cfg.eval_steps is None else cfg.eval_steps
    settings = hashlib.sha1(json.dumps(to_dict(task_cfg).get("eval", {}), sort_keys=True).encode()).hexdigest()[:8]
    todo, out = [], {}
    for c in conditions:
        path = run_dir / "report-eval" / f"{c.key()}-{settings}-e{cfg.episodes}-s{cfg.eval_seed}-k{steps}.json"
        if path.is_file():
            out[c] = json.loads(path.read_text())
        else:
            todo.append((c, path))
    if todo:  # the evaluator yields one result per condition: each is saved as soon as it exists
        results = evaluator(cfg.task)(run_dir, task_cfg, [c for c, _ in todo], cfg, progress)
        for (c, path), result in zip(todo, results, strict=True):
            atomic_write_text(path, json.dumps(result, indent=2) + "\n")
            out[c] = result
    return [dict(out[c], condition=c.name, group=c.group) for c in conditions]


def evaluator(task: str):
    if task not in EVALUATORS:
        raise UserError(f"task {task!r} has no report evaluation; tasks with one: {', '.join(EVALUATORS)}")
    return EVALUATORS[task]


def _maze2d_evaluate(run_dir: Path, current, conditions, cfg: ReportConfig, progress: bool):
    import copy

    from ..checkpoint import latest_checkpoint
    from ..core import ModularMeanFlow
    from ..tasks.maze2d import load_model
    from .conditions import evaluate_condition

    net, task_cfg, normalizer = load_model(latest_checkpoint(run_dir))
    task_cfg.eval = copy.deepcopy(current.eval)  # the model from the checkpoint, the evaluation from now
    if task_cfg.train.threads > 0:  # evaluate with the threads the run trained with
        import torch

        torch.set_num_threads(task_cfg.train.threads)
    mode = ModularMeanFlow(task_cfg.objective).sampling_mode
    if cfg.eval_steps is not None:
        task_cfg.eval.steps = cfg.eval_steps
    elif mode == "euler":  # as `mmftraj eval`: flow matching needs several Euler steps
        task_cfg.eval.steps = task_cfg.eval.fm_steps
    for c in conditions:
        r = evaluate_condition(net, normalizer, task_cfg, mode, c, cfg.episodes, cfg.eval_seed, progress)
        yield dict(r, evaluations=task_cfg.eval.steps)


EVALUATORS = {"maze2d": _maze2d_evaluate}


def run_report(kind: str, cfg: ReportConfig, runs_dir: Path = Path("runs"), out: Path | None = None,
               progress: bool = True) -> dict:
    """Run (or reuse) the whole grid, then write the report; returns {path name: Path}."""
    from rich.console import Console

    console = Console()
    evaluator(cfg.task)  # before any training: a task the report cannot score is an error now
    grid = build_grid(kind, cfg)
    keys = list(dict.fromkeys(item.key for item in grid))
    console.print(f"[bold]report {kind}[/]: {len(grid)} (run, split) cells over {len(keys)} training runs")
    rows, trained, task_cfgs = [], {}, {}
    for i, key in enumerate(keys, 1):
        t0 = time.perf_counter()
        run_dir, status, task_cfgs[key] = ensure_trained(cfg, key, runs_dir, progress)
        trained[key] = run_dir
        console.print(f"[{i}/{len(keys)}] {key.run_name}: {status} ({time.perf_counter() - t0:.0f} s)")
    for i, item in enumerate(grid, 1):
        t0 = time.perf_counter()
        run_dir = trained[item.key]
        results = json.loads((run_dir / "results.json").read_text())
        stab = run_stability(run_dir / "metrics.csv", cfg.spike_factor)
        for r in evaluate_run(cfg, run_dir, task_cfgs[item.key], item.conditions, progress):
            rows.append({"split": item.split, "condition": r["condition"], "group": r["group"],
                         "fraction": item.key.fraction, "variant": item.key.variant, "seed": item.key.seed,
                         "score": r["score_mean"], "score_episode_se": r["score_se"],
                         "success_rate": r["success_rate"], "episodes": r["episodes"], "env": r["env"],
                         "evaluations": r.get("evaluations"), "final_mse": stab["final_mse"],
                         "spikes": stab["spikes"], "diverged": stab["diverged"],
                         "train_time_s": results.get("train_time_s"), "run": f"{cfg.name}/{item.key.run_name}"})
        console.print(f"[{i}/{len(grid)}] scored {item.key.run_name} on {item.split} "
                      f"({len(item.conditions)} conditions, {time.perf_counter() - t0:.0f} s)")
    per_run = pd.DataFrame(rows)
    out = Path(out) if out is not None else Path(runs_dir) / cfg.task / cfg.name / kind
    paths = write_report(kind, cfg, per_run, {str(k.run_name): trained[k] for k in keys}, out)
    print_summary(kind, summarize(per_run), paired_differences(per_run, REFERENCE, cfg.confidence), console)
    return paths


def print_summary(kind: str, summary: pd.DataFrame, paired: pd.DataFrame, console) -> None:
    """The score table (mean ± s.e. over seeds) with mmf's paired difference, in the terminal."""
    from rich.table import Table

    table = Table(title=f"report {kind}: normalized score, mean ± s.e. over seeds")
    for col in ("split", "condition", "fraction", "variant", "score", "success", f"{REFERENCE} − this (CI)"):
        table.add_column(col, justify="right" if col not in ("split", "condition", "variant") else "left")
    diffs = {(r.split, r.condition, r.fraction, r.comparison.split(" - ")[1]): r for r in paired.itertuples()}
    for r in summary.itertuples():
        d = diffs.get((r.split, r.condition, r.fraction, r.variant))
        diff = f"{d.diff_mean:+.1f} [{d.ci_low:.1f}, {d.ci_high:.1f}]" if d is not None and np.isfinite(d.ci_low) else ""
        table.add_row(r.split, r.condition, f"{r.fraction:g}", r.variant, _pm(r.score_mean, r.score_se),
                      f"{100 * r.success_mean:.0f}%", diff)
    console.print(table)


# -- aggregation (pure pandas) -------------------------------------------------------------------------
GROUP = ["split", "condition", "group", "fraction"]


def t_quantile(p: float, df: int) -> float:
    """Student-t quantile by bisection on a numerically integrated CDF (no scipy needed)."""
    if df < 1:
        return float("nan")
    logc = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)

    def cdf(x: float) -> float:
        t = np.linspace(0.0, abs(x), 4001)
        pdf = np.exp(logc - (df + 1) / 2 * np.log1p(t * t / df))
        area = float(np.sum((pdf[1:] + pdf[:-1]) * np.diff(t)) / 2)  # trapezoid
        return 0.5 + math.copysign(area, x)

    lo, hi = 0.0, 1.0
    while cdf(hi) < p:
        hi *= 2
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return (lo + hi) / 2


def summarize(per_run: pd.DataFrame) -> pd.DataFrame:
    """Mean ± standard error over seeds for each (split, condition, fraction, variant)."""
    g = per_run.groupby(GROUP + ["variant"], sort=False)
    out = g.agg(n=("seed", "nunique"), score_mean=("score", "mean"), score_sd=("score", "std"),
                success_mean=("success_rate", "mean"), spikes=("spikes", "sum"), diverged=("diverged", "sum"))
    out["score_se"] = out["score_sd"] / np.sqrt(out["n"])
    return out.drop(columns="score_sd").reset_index()


def paired_differences(per_run: pd.DataFrame, reference: str = REFERENCE, confidence: float = 0.95) -> pd.DataFrame:
    """Score of `reference` minus each other variant, paired on seed within (split, condition,
    fraction); mean, s.e. and a t-based confidence interval over the pairs."""
    ref = per_run[per_run["variant"] == reference]
    cols = ["split", "condition", "group", "fraction", "comparison", "n", "diff_mean", "diff_se", "ci_low", "ci_high",
            "verdict"]
    if ref.empty:
        return pd.DataFrame(columns=cols)
    rows = []
    for other in [v for v in per_run["variant"].unique() if v != reference]:
        merged = ref.merge(per_run[per_run["variant"] == other], on=GROUP + ["seed"], suffixes=("_ref", "_other"))
        for keys, g in merged.groupby(GROUP, sort=False):
            d = (g["score_ref"] - g["score_other"]).to_numpy(dtype=float)
            n = len(d)
            mean = float(d.mean())
            se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan")
            half = t_quantile(0.5 + confidence / 2, n - 1) * se if n > 1 else float("nan")
            low, high = mean - half, mean + half
            verdict = ("better" if low > 0 else "worse" if high < 0 else "no clear difference") if n > 1 else "n/a"
            rows.append(dict(zip(GROUP, keys, strict=True), comparison=f"{reference} - {other}", n=n, diff_mean=mean,
                             diff_se=se, ci_low=low, ci_high=high, verdict=verdict))
    return pd.DataFrame(rows, columns=cols)


def read_metrics(path: Path) -> pd.DataFrame:
    path = Path(path)
    return pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=["step", "loss", "mse"])


def spike_mask(values: np.ndarray, factor: float = 3.0, window: int = 5) -> np.ndarray:
    """True where a logged value exceeds `factor` × the median of the `window` values before it."""
    prev = pd.Series(np.asarray(values, dtype=float)).shift(1).rolling(window, min_periods=3).median().to_numpy()
    return np.isfinite(prev) & (np.asarray(values, dtype=float) > factor * prev)


def run_stability(metrics_csv: Path, spike_factor: float = 3.0) -> dict:
    """Loss spikes and divergence of one run from its metrics.csv (on the unweighted mse: the
    adaptively weighted loss sits near 1 whatever happens, so it hides spikes).

    spike: a logged mse above spike_factor × the median of the 5 logged values before it;
    diverged: a non-finite mse/loss/grad_norm, or a final mse above spike_factor × the run's minimum."""
    m = read_metrics(metrics_csv)
    col = "mse" if "mse" in m.columns else "loss"
    x = pd.to_numeric(m[col], errors="coerce").to_numpy(dtype=float) if len(m) else np.zeros(0)
    if len(x) == 0:
        return {"spikes": 0, "diverged": False, "final_mse": float("nan")}
    finite = np.isfinite(x)
    for extra in ("loss", "grad_norm"):
        if extra in m.columns:
            finite &= np.isfinite(pd.to_numeric(m[extra], errors="coerce").to_numpy(dtype=float))
    spikes = int(spike_mask(x, spike_factor).sum())
    diverged = bool((~finite).any() or x[-1] > spike_factor * np.nanmin(x))
    return {"spikes": spikes, "diverged": diverged, "final_mse": float(x[-1])}


# -- writing -----------------------------------------------------------------------------------------------
def _pm(mean, se, digits=1) -> str:
    if not np.isfinite(mean):
        return "–"
    return f"{mean:.{digits}f} ± {se:.{digits}f}" if np.isfinite(se) else f"{mean:.{digits}f}"


def _markdown(df: pd.DataFrame) -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join(lines)


def write_report(kind: str, cfg: ReportConfig, per_run: pd.DataFrame, runs: dict[str, Path], out: Path) -> dict:
    """report.csv (summary), per_run.csv, paired.csv, report.md and the plots under `out`."""
    from ..config import to_dict
    from ..io import atomic_write_text
    from .report_plots import plot_id_vs_ood, plot_loss_curves, plot_lowdata

    out.mkdir(parents=True, exist_ok=True)
    summary = summarize(per_run)
    paired = paired_differences(per_run, REFERENCE, cfg.confidence)
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
    curves = {name: read_metrics(Path(d) / "metrics.csv") for name, d in runs.items()}
    plot_loss_curves(curves, paths["losses.png"], cfg.spike_factor)
    atomic_write_text(paths["report.md"], report_markdown(kind, cfg, per_run, summary, paired, runs, to_dict(cfg)))
    return paths


def report_markdown(kind, cfg, per_run, summary, paired, runs, cfg_dict) -> str:
    level = f"{100 * cfg.confidence:g}%"
    table = summary.assign(score=[_pm(m, s) for m, s in zip(summary.score_mean, summary.score_se, strict=True)],
                           success=[f"{100 * v:.0f}%" for v in summary.success_mean])
    table = table[["split", "condition", "group", "fraction", "variant", "n", "score", "success", "spikes", "diverged"]]
    diff = paired.assign(difference=[_pm(m, s) for m, s in zip(paired.diff_mean, paired.diff_se, strict=True)],
                         ci=[f"[{lo:.1f}, {hi:.1f}]" if np.isfinite(lo) else "–"
                             for lo, hi in zip(paired.ci_low, paired.ci_high, strict=True)])
    diff = diff[["split", "condition", "fraction", "comparison", "n", "difference", "ci", "verdict"]]
    counts = paired["verdict"].value_counts().to_dict() if len(paired) else {}
    evals = per_run.groupby("variant")["evaluations"].first().to_dict() if "evaluations" in per_run else {}
    stab = per_run.drop_duplicates("run").groupby("variant").agg(runs=("run", "count"), spikes=("spikes", "sum"),
                                                                   diverged=("diverged", "sum"),
                                                                   final_mse=("final_mse", "median")).reset_index()
    pictures = "![score vs data fraction](lowdata.png)" if kind == "lowdata" else "![in-distribution vs OOD](ood.png)"
    return f"""# mmftraj report: {kind} ({cfg.task}, {cfg.preset or 'default'})

Grid: variants {', '.join(cfg.variants)} × {'splits ' + ', '.join(cfg.ood.splits) if kind == 'ood'
        else 'data fractions ' + ', '.join(f'{f:g}' for f in sorted(set(cfg.lowdata.fractions)))} × seeds
{', '.join(map(str, cfg.seeds))}; {len(runs)} training runs, {cfg.episodes} evaluation episodes per run and
condition (seeds {cfg.eval_seed}…{cfg.eval_seed + cfg.episodes - 1}, the same for every run). Network
evaluations per plan: {', '.join(f'{k} {v}' for k, v in evals.items())}. Score: d4rl-normalized return
(mean over episodes per run, then mean ± s.e. over seeds); success: share of episodes that reached the goal.

## Scores (mean ± s.e. over seeds)

{_markdown(table)}

## Paired differences ({REFERENCE} minus each variant, same seed and split; {level} t-interval)

Verdicts: {', '.join(f'{v}: {n}' for v, n in counts.items()) or 'none'} ("better"/"worse": the interval
excludes 0).

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
