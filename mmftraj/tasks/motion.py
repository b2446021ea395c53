"""motion: learn windows of a trajectory table (motion capture, logged robot data) and draw them in one step.

`mmftraj train --task motion` trains a temporal transformer on H-step windows of a CSV/Parquet
table (`--set data.path=FILE`; column names in `data.*`, layout in mmftraj.data.tables) or, by
default, of a synthetic gait table generated in process (mmftraj.data.gait). A seeded share of
the episodes is held out; the evaluation compares k-step samples with their windows (sliced
Wasserstein distance of normalized, flattened windows), next to the same distance between training
and held-out windows (what a perfect generator would score, up to sampling noise), and reports the
samples' roughness (step-to-step jitter) beside the data's. This module wires them: the table, its
split and speed band are mmftraj.data.motion, the metrics mmftraj.evaluation.motion_metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from ..checkpoint import load_task_model, run_name
from ..config import apply_overrides, check_eval_overrides, to_dict
from ..core import ModularMeanFlow, ObjectiveConfig, sample
from ..data import Normalizer
from ..data.motion import DataConfig, load_store, load_windows, short_episodes
from ..data.speed import time_step
from ..errors import UserError, check_seed
from ..evaluation.motion_metrics import band_shares, roughness, window_distance
from ..evaluation.window_plots import plot_windows
from ..io import atomic_path
from ..models.transformer import TransformerConfig, build_transformer, check_task_sizes, count_parameters
from ..progress import tracked
from ..signal import savgol
from ..training import TrainConfig, Trainer
from . import Task

PRESETS = ()


@dataclass
class ModelConfig:
    width: int = 128
    depth: int = 4
    heads: int = 4
    patch: int = 8  # time steps per token (8 ran at 1.7× the steps/s of 4 on this CPU)
    mlp_ratio: float = 4.0
    dim_in: int = 0  # state + action columns per step: filled from the table by complete() when a run starts


@dataclass
class EvalConfig:
    steps: list[int] = field(default_factory=lambda: [1, 2, 4, 16])
    n_samples: int = 1024  # at most this many held-out windows are compared (and as many samples)
    projections: int = 256
    plots: int = 12  # windows drawn per panel in samples.png
    seed: int = 1234
    # Savitzky-Golay post-filter (cubic) of this many steps applied to every sample along time: an
    # odd window of 5 or more; 0 (or 1) is off. Evaluation reports the raw samples and, when set, the
    # smoothed ones beside them; `sample` writes smoothed ones. (maze2d's eval.smooth is another
    # filter: a moving average over the plan, 1 = off.)
    smooth: int = 0


@dataclass
class Config:
    # c on the per-sample sum: 1e-3 per entry of the gait table's 64 × 4 windows, as measured
    objective: ObjectiveConfig = field(default_factory=lambda: ObjectiveConfig(lambda_warmup=1000, adaptive_c=0.256))
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            # EMA 0.99, not 0.999: after 2000 steps 0.999 still holds 13.5 % of the initial (u ≡ 0)
            # weights, which shrank the samples and doubled the distance in a 1500-step trial.
            steps=2000, batch_size=128, lr=5e-4, warmup_steps=100, ema_decay=0.99, log_every=50, ckpt_every=500
        )
    )
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def default_config(preset: str | None = None) -> Config:
    return Config()


def default_preset(cfg: Config) -> str:
    return Path(cfg.data.path).stem if cfg.data.path else "gait"


# -- data and checks ----------------------------------------------------------------------------
def complete(cfg: Config) -> Config:
    """`cfg` with the field that comes from the data filled: model.dim_in, the table's state and
    action columns per step. `mmftraj.runs.train_run` calls it once for a new run, before it writes
    config.yaml; a resumed run's saved config has it already."""
    store = load_store(cfg.data)
    return replace(cfg, model=replace(cfg.model, dim_in=store.obs_dim + store.act_dim))


def smooth_window(cfg: Config) -> int:
    """The post-filter's window, 0 when eval.smooth is off (0 or 1)."""
    return cfg.eval.smooth if cfg.eval.smooth > 1 else 0


def check_config(cfg: Config, preset: str | None = None) -> None:
    """The task's check: model sizes that do not fit data.horizon and eval.* values a run would only
    fail on after training, refused before a run folder exists or the table is read."""
    m = cfg.model
    check_task_sizes(cfg.data.horizon, m.width, m.depth, m.heads, m.patch)
    check_eval(cfg)


def check_eval(cfg: Config) -> None:
    """eval.* values the evaluation would only fail on (after training, or in `eval` and `sample`)."""
    e = cfg.eval
    check_seed(e.seed, "eval.seed")
    if e.n_samples < 1 or e.projections < 1:
        raise UserError(f"eval.n_samples and eval.projections must be at least 1, got {e.n_samples} and "
                        f"{e.projections}")
    if not e.steps or min(e.steps) < 1:
        raise UserError(f"eval.steps must list sampling step counts of at least 1, got {e.steps}")
    if e.smooth not in (0, 1) and (e.smooth < 5 or e.smooth % 2 == 0 or e.smooth > cfg.data.horizon):
        raise UserError(f"eval.smooth must be 0 (off) or an odd number of steps from 5 up to data.horizon "
                        f"{cfg.data.horizon}, got {e.smooth}")


# -- model, training, evaluation ------------------------------------------------------------------
def build_model(cfg: Config):
    m = cfg.model
    if m.dim_in < 1:
        raise UserError("model.dim_in is set from the data when training; this config has none")
    check_task_sizes(cfg.data.horizon, m.width, m.depth, m.heads, m.patch)
    tcfg = TransformerConfig(horizon=cfg.data.horizon, dim_in=m.dim_in, width=m.width, depth=m.depth,
                             heads=m.heads, patch=m.patch, mlp_ratio=m.mlp_ratio, attention="fast")
    return build_transformer(tcfg)


def train(cfg: Config, run_dir: Path, resume: bool = False, progress: bool = True) -> dict:
    """Train on the table's training windows and score the EMA weights; `cfg` is `complete`d
    (model.dim_in matches the table)."""
    check_config(cfg)
    torch.manual_seed(cfg.train.seed)
    train_windows, test_windows = load_windows(cfg.data)
    if cfg.model.dim_in != train_windows.transition_dim:
        raise UserError(f"model.dim_in is {cfg.model.dim_in} but the table has {train_windows.transition_dim} state "
                        "and action columns per step: a new run takes model.dim_in from its table (the task's "
                        "complete(cfg)), a resumed one needs the table it was trained on")
    h = cfg.data.horizon
    dropped = short_episodes(train_windows, h) + short_episodes(test_windows, h)
    if dropped:
        print(f"{dropped} of {train_windows.store.num_episodes + test_windows.store.num_episodes} episodes are "
              f"shorter than data.horizon {h} and give no windows", flush=True)
    model = build_model(cfg)
    objective = ModularMeanFlow(cfg.objective)

    def batch_fn(generator: torch.Generator, step: int) -> dict:
        return {"x": train_windows.sample(cfg.train.batch_size, generator).trajectories}

    meta = {"task": "motion", "config": to_dict(cfg), "normalizer": train_windows.normalizer.state_dict(),
            "columns": {"state": train_windows.store.meta["state"], "action": train_windows.store.meta["action"]},
            "time_step": time_step(train_windows.store)}
    trainer = Trainer(model, objective, batch_fn, cfg.train, run_dir, meta=meta, progress=progress)
    fit = trainer.fit(resume=resume)
    metrics = evaluate_model(trainer.ema.cpu(), cfg, objective.sampling_mode, train_windows, test_windows,
                             plot_path=Path(run_dir) / "samples.png", progress=progress)
    return {"objective": cfg.objective.variant, "data": default_preset(cfg), "parameters": count_parameters(model),
            "windows": {"train": len(train_windows), "held_out": len(test_windows)},
            "episodes": {"train": train_windows.store.num_episodes, "held_out": test_windows.store.num_episodes,
                         **train_windows.store.meta["left_out"]},
            "episodes_shorter_than_horizon": dropped, **fit, **metrics}


def evaluation_draw(cfg: Config, train_windows, test_windows) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(held-out windows, as many training windows, the noise samples start from), each (n, H, D)
    with n = min(eval.n_samples, held-out windows); fixed by eval.seed, so every evaluation of a
    run compares the same windows from the same noise."""
    g = torch.Generator().manual_seed(cfg.eval.seed)
    n = min(cfg.eval.n_samples, len(test_windows))
    held = test_windows.batch(torch.randperm(len(test_windows), generator=g)[:n]).trajectories
    seen = train_windows.batch(torch.randint(len(train_windows), (n,), generator=g)).trajectories
    return held, seen, torch.randn(held.shape, generator=g)


def evaluate_model(model, cfg: Config, mode: str, train_windows, test_windows, plot_path: Path | None = None,
                   progress: bool = True) -> dict:
    """Sliced Wasserstein distance of k-step samples to held-out windows, for k in cfg.eval.steps
    (a progress line per step count off a terminal, a bar on one)."""
    model.eval()
    held, seen, noise = evaluation_draw(cfg, train_windows, test_windows)
    n = len(held)

    def distance(a: torch.Tensor) -> float:
        return window_distance(a, held, cfg.eval.projections)

    samples, swd, rough = {}, {}, {"held-out data": roughness(held)}
    for k in tracked(cfg.eval.steps, "sampled step counts", len(cfg.eval.steps), progress):
        samples[k] = sample(model, noise, steps=k, mode=mode)
        swd[f"{k}-step"] = distance(samples[k])
        rough[f"{k}-step"] = roughness(samples[k])
    out = {"sampling": mode, "compared_windows": n, "swd": swd, "swd_data_floor": distance(seen), "roughness": rough}
    w = smooth_window(cfg)
    smoothed = {k: savgol(x, w) for k, x in samples.items()} if w else {}
    if smoothed:
        out["smoothed"] = {"window": w,
                           "swd": {f"{k}-step": distance(x) for k, x in smoothed.items()},
                           "roughness": {f"{k}-step": roughness(x) for k, x in smoothed.items()}}
    if plot_path is not None:
        panels = [("held-out data", held)] + [(f"{k} step{'s' if k > 1 else ''}", x) for k, x in samples.items()]
        if smoothed:  # the fewest steps, filtered: what `sample` would write
            k = min(smoothed)
            panels.append((f"{k} step{'s' if k > 1 else ''}, smoothed ({w})", smoothed[k]))
        plot_windows([(label, test_windows.unnormalize(x.numpy())) for label, x in panels],
                     test_windows.store.meta["state"], plot_path, cfg.eval.plots,
                     f"{cfg.objective.variant} on {default_preset(cfg)} ({mode} sampling)")
    if cfg.data.hold_out_speed:
        shares = band_shares(test_windows, {"held-out data": held, "training data": seen}
                             | {f"{k}-step": x for k, x in samples.items()}, cfg.data.hold_out_speed)
        out["hold_out_speed"] = {"band": list(cfg.data.hold_out_speed), "share": shares}
    return out


def load_model(checkpoint: str | Path, which: str = "ema"):
    """(model, cfg, normalizer, meta) from a motion checkpoint."""

    model, cfg, meta = load_task_model(checkpoint, "motion", Config, build_model, which)
    if "normalizer" not in meta:
        raise UserError(f"checkpoint {checkpoint} has no normalizer in its metadata")
    return model, cfg, Normalizer.from_state_dict(meta["normalizer"]), meta


def sample_files(checkpoint, steps: int = 1, n: int = 64, out: Path = Path("samples"), seed: int = 0,
           device: str | torch.device | None = None, overrides=()) -> list[Path]:
    """n generated windows written as a trajectory table (CSV with the training table's column
    names, one episode per window, so mmftraj.data.tables reads it back) and a plot of the first few;
    smoothed along time when eval.smooth is set (the run's, or --set eval.smooth=W)."""

    check_eval_overrides(overrides, ("eval.smooth=",), "only eval.smooth (the step count is --steps, the "
                         "number of samples --n)", command="sample")
    model, cfg, normalizer, meta = load_model(checkpoint)
    cfg = apply_overrides(cfg, list(overrides))
    check_eval(cfg)
    device = torch.device(device or "cpu")
    mode = ModularMeanFlow(cfg.objective).sampling_mode
    shape = (n, cfg.data.horizon, cfg.model.dim_in)
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed)).to(device)
    x = sample(model.to(device), noise, steps=steps, mode=mode).cpu()
    w = smooth_window(cfg)
    raw = normalizer.unnormalize(savgol(x, w) if w else x).numpy()
    columns = meta["columns"]["state"] + meta["columns"]["action"]
    h = cfg.data.horizon
    table = pd.DataFrame(raw.reshape(n * h, -1), columns=columns)
    # Time restarts at 0 in every window, in the table's median time step (step indices when its
    # time column was not numeric); rounded so 0.05 stays 0.05 in the CSV.
    table.insert(0, cfg.data.time, np.tile(np.round(np.arange(h) * meta.get("time_step", 1.0), 9), n))
    table.insert(0, cfg.data.episode, np.repeat([f"sample_{i:04d}" for i in range(n)], h))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    run = run_name(checkpoint)
    stem = f"motion-{run}-{cfg.objective.variant}-{steps}step{f'-smooth{w}' if w else ''}-s{seed}"
    with atomic_path(out / f"{stem}.csv", suffix=".csv") as tmp:
        table.to_csv(tmp, index=False)
    plot_windows([(f"{steps}-step samples", raw)], meta["columns"]["state"], out / f"{stem}.png", cfg.eval.plots,
                 f"{cfg.objective.variant}, {run}")
    return [out / f"{stem}.csv", out / f"{stem}.png"]


def evaluate(checkpoint: str | Path, steps: list[int] | None = None, out: Path | None = None, seed: int = 0,
             episodes: int | None = None, overrides=(), progress: bool = True) -> dict:
    if episodes is not None:
        raise UserError("motion compares windows, not episodes; its evaluation size is --set eval.n_samples=N")
    check_eval_overrides(overrides, ("eval.", "data.path="), "eval.* overrides and data.path (the table, if it moved)")
    model, cfg, normalizer, _ = load_model(checkpoint)
    cfg = apply_overrides(cfg, list(overrides))
    check_eval(cfg)
    if cfg.data.path is not None and not Path(cfg.data.path).is_file():
        raise UserError(f"table not found: {cfg.data.path} (the run's data.path, relative to where it was trained); "
                        "point to it with --set data.path=FILE")
    cfg.eval.seed = cfg.eval.seed + seed
    if steps:
        cfg.eval.steps = list(steps)
    train_windows, test_windows = load_windows(cfg.data, normalizer)
    mode = ModularMeanFlow(cfg.objective).sampling_mode
    return evaluate_model(model, cfg, mode, train_windows, test_windows,
                          plot_path=out / "samples.png" if out else None, progress=progress)


TASK = Task("motion", Config, default_config, train, PRESETS, default_preset, evaluate, sample_files,
            check=check_config, complete=complete)
