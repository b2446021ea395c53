"""motion: learn windows of a trajectory table (motion capture, logged robot data) and draw them in one step.

`mmftraj train --task motion` trains a temporal transformer on H-step windows of a CSV/Parquet
table (`--set data.path=FILE`; column names in `data.*`, layout in mmftraj.data.tables) or, by
default, of a synthetic gait table generated in process (mmftraj.data.gait). A seeded share of
the episodes is held out; the evaluation compares k-step samples with their windows (sliced
Wasserstein distance of normalized, flattened windows), next to the same distance between training
and held-out windows (what a perfect generator would score, up to sampling noise), and reports the
samples' roughness (step-to-step jitter) beside the data's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import torch

from ..checkpoint import load_task_model, run_name
from ..config import apply_overrides, check_eval_overrides, save_yaml, to_dict
from ..core import ModularMeanFlow, ObjectiveConfig, sample
from ..data import Normalizer, WindowDataset
from ..data.gait import gait_table
from ..data.splits import check_fraction, subset_indices
from ..data.tables import load_table, store_from_frame
from ..errors import UserError, check_seed
from ..evaluation.distances import sliced_wasserstein
from ..evaluation.figures import pyplot, save_png
from ..io import atomic_path
from ..models.transformer import TransformerConfig, build_transformer, check_task_sizes, count_parameters
from ..signal import savgol
from ..training import TrainConfig, Trainer
from . import Task

PRESETS = ()


@dataclass
class DataConfig:
    path: str | None = None  # CSV/Parquet table; None: the synthetic gait table (mmftraj.data.gait)
    episode: str = "episode"  # column names, as in mmftraj.data.tables.load_table
    time: str = "t"
    state: list[str] = field(default_factory=list)  # empty: every s_* / obs_* column
    action: list[str] | None = None  # None: every a_* / act_* column; [] for none
    horizon: int = 64
    normalizer: Literal["gaussian", "limits"] = "gaussian"
    test_fraction: float = 0.1  # share of episodes held out for the evaluation
    split_seed: int = 0
    gait_episodes: int = 4096  # size of the synthetic gait table (data.path unset)
    # Low data: keep this share of the training episodes (nested across fractions for one subset_seed)
    fraction: float = 1.0
    subset_seed: int = 0
    # OOD: [lo, hi] planar speed band (units of the first two state columns per unit of time, m/s on
    # the gait table) whose episodes never reach training; the evaluation reports the share of
    # samples in the band beside the held-out data's. Empty: nothing held out.
    hold_out_speed: list[float] = field(default_factory=list)


@dataclass
class ModelConfig:
    width: int = 128
    depth: int = 4
    heads: int = 4
    patch: int = 8  # time steps per token (8 ran at 1.7× the steps/s of 4 on this CPU)
    mlp_ratio: float = 4.0
    dim_in: int = 0  # state + action columns per step: set from the data when training


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


# -- data ----------------------------------------------------------------------------------------
def load_store(cfg: Config):
    """The whole table as an EpisodeStore: the user's file, or the synthetic gait table."""

    d = cfg.data
    if d.path is None:
        if d.gait_episodes < 2:
            raise UserError(f"data.gait_episodes must be at least 2, got {d.gait_episodes}")
        frame = gait_table(d.gait_episodes)  # one fixed table: data.split_seed only picks the held-out share
        return store_from_frame(frame, "synthetic gait table", d.episode, d.time, d.state or None, d.action)
    return load_table(d.path, d.episode, d.time, d.state or None, d.action)


def split_episodes(num_episodes: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) episode indices: a seeded permutation, the first ceil(f·E) held out."""
    if not 0 < test_fraction < 1:
        raise UserError(f"data.test_fraction must be in (0, 1), got {test_fraction}")
    if num_episodes < 2:
        raise UserError(f"the table has {num_episodes} episode; holding some out for the evaluation needs 2 or more")
    order = np.random.default_rng(seed).permutation(num_episodes)
    n_test = min(num_episodes - 1, max(1, math.ceil(test_fraction * num_episodes)))
    return np.sort(order[n_test:]), np.sort(order[:n_test])


def load_windows(cfg: Config, normalizer=None):
    """(train windows, held-out windows): the normalizer is fitted on the training episodes only,
    or given (a checkpoint's)."""

    h = cfg.data.horizon
    store = load_store(cfg)
    train_idx, test_idx = split_episodes(store.num_episodes, cfg.data.test_fraction, cfg.data.split_seed)
    train_idx, left_out = training_episodes(store, train_idx, cfg.data)
    parts = []
    for name, index in (("training", train_idx), ("held-out", test_idx)):
        part = store.take(index)
        if (part.lengths < h).all():
            raise UserError(f"no {name} episode is as long as data.horizon {h} (the longest has "
                            f"{int(part.lengths.max())} steps); use a shorter data.horizon"
                            + (", another data.split_seed or a larger data.test_fraction" if name == "held-out" else ""))
        parts.append(part)
    parts[0].meta["left_out"] = left_out  # what data.hold_out_speed / data.fraction took from training
    train = WindowDataset(parts[0], h, normalizer or cfg.data.normalizer)
    test = WindowDataset(parts[1], h, train.normalizer)
    return train, test


def quarter_chord(steps: int) -> int:
    """The default speed chord of a `steps`-long window: a quarter of it, at least one step."""
    return max(1, (steps - 1) // 4)


def planar_speed(states: np.ndarray, dt: float, chord: int | None = None) -> np.ndarray:
    """Mean speed (N,) of N windows (N, T, D ≥ 2) in the plane of their first two state columns,
    over chords of `chord` steps (default: a quarter of the window). Step-to-step jitter in
    generated positions would add its own speed to a step-by-step path length (chord 1 reads
    one-step `mmf` samples at a median 5.5-8.8 m/s against the data's 1.6;
    benchmarks/records/motion_smoothness/), while a quarter-window chord still follows slow turns."""
    k = chord or quarter_chord(states.shape[-2])
    xy = states[..., :2]
    return np.linalg.norm(xy[..., k:, :] - xy[..., :-k, :], axis=-1).mean(-1) / (k * dt)


def window_speeds(windows, x: torch.Tensor, chord: int | None = None) -> np.ndarray:
    """Planar speeds (N,) of normalized windows x (N, H, D) of a WindowDataset's table."""
    return planar_speed(windows.unnormalize(x.numpy()), time_step(windows.store), chord)


def in_band(speeds: np.ndarray, band: list[float]) -> np.ndarray:
    """Which speeds lie in the closed band [lo, hi]."""
    return (speeds >= band[0]) & (speeds <= band[1])


def check_speed_band(band: list[float], state_columns: int) -> None:
    if len(band) != 2 or not band[0] < band[1]:
        raise UserError(f"data.hold_out_speed must be [lo, hi] with lo < hi, got {list(band)}")
    if state_columns < 2:
        raise UserError("data.hold_out_speed needs two state columns (a planar position); this table has "
                        f"{state_columns}")


def training_episodes(store, train_idx: np.ndarray, d: DataConfig) -> tuple[np.ndarray, dict]:
    """(the training episodes left, what was left out): the speed band's episodes are held out,
    then the low-data share is kept, a prefix of one seeded permutation, so smaller shares are
    subsets of larger ones. An episode's speed is measured as a window's is (chords of a quarter
    of data.horizon), averaged over the episode; with episodes longer than the horizon some of
    their windows can still fall in the band (the evaluation reports that share)."""

    check_fraction(d.fraction)
    left_out = {"removed_by_speed_band": 0, "left_out_by_fraction": 0}
    if d.hold_out_speed:
        check_speed_band(d.hold_out_speed, store.obs_dim)
        dt, chord = time_step(store), quarter_chord(d.horizon)
        speeds = np.array([planar_speed(store.episode(k)["observations"][None], dt, chord)[0]
                           if store.lengths[k] > chord else np.nan for k in train_idx])
        keep = ~in_band(speeds, d.hold_out_speed)
        left_out["removed_by_speed_band"] = int((~keep).sum())
        if keep.all():
            raise UserError(f"data.hold_out_speed {list(d.hold_out_speed)} holds out no training episode (their "
                            f"speeds span {np.nanmin(speeds):.3g}-{np.nanmax(speeds):.3g})")
        if not keep.any():
            raise UserError(f"data.hold_out_speed {list(d.hold_out_speed)} holds out every training episode")
        train_idx = train_idx[keep]
    if d.fraction < 1:
        kept = train_idx[subset_indices(len(train_idx), d.fraction, d.subset_seed)]
        left_out["left_out_by_fraction"] = len(train_idx) - len(kept)
        train_idx = kept
    return train_idx, left_out


def band_shares(cfg: Config, windows, panels: dict[str, torch.Tensor]) -> dict[str, float]:
    """Share of each panel's windows (normalized, (N, H, D)) whose planar speed lies in the held-out band."""
    return {label: float(in_band(window_speeds(windows, x), cfg.data.hold_out_speed).mean())
            for label, x in panels.items()}


def short_episodes(cfg: Config, windows) -> int:
    """How many episodes are shorter than the horizon (they give no windows)."""
    return int((windows.store.lengths < cfg.data.horizon).sum())


def smooth_window(cfg: Config) -> int:
    """The post-filter's window, 0 when eval.smooth is off (0 or 1)."""
    return cfg.eval.smooth if cfg.eval.smooth > 1 else 0


def check_eval(cfg: Config, preset: str | None = None) -> None:
    """eval.* values the run would only fail on after training; the task's check, so refused before
    a run folder exists."""
    e = cfg.eval
    check_seed(e.seed, "eval.seed")
    if e.n_samples < 1 or e.projections < 1:
        raise UserError(f"eval.n_samples and eval.projections must be at least 1, got {e.n_samples} and {e.projections}")
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
    m = cfg.model
    check_task_sizes(cfg.data.horizon, m.width, m.depth, m.heads, m.patch)
    check_eval(cfg)
    torch.manual_seed(cfg.train.seed)
    train_windows, test_windows = load_windows(cfg)
    dropped = short_episodes(cfg, train_windows) + short_episodes(cfg, test_windows)
    if dropped:
        print(f"{dropped} of {train_windows.store.num_episodes + test_windows.store.num_episodes} episodes are "
              f"shorter than data.horizon {cfg.data.horizon} and give no windows", flush=True)
    cfg.model.dim_in = train_windows.transition_dim
    save_yaml(cfg, Path(run_dir) / "config.yaml")  # the resolved config, now with the data's width
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
                             plot_path=Path(run_dir) / "samples.png")
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


def window_distance(cfg: Config, a: torch.Tensor, held: torch.Tensor) -> float:
    """Sliced Wasserstein distance between flattened windows, with fixed projections."""
    return sliced_wasserstein(a.flatten(1), held.flatten(1), cfg.eval.projections, torch.Generator().manual_seed(0))


def evaluate_model(model, cfg: Config, mode: str, train_windows, test_windows, plot_path: Path | None = None) -> dict:
    """Sliced Wasserstein distance of k-step samples to held-out windows, for k in cfg.eval.steps."""
    model.eval()
    held, seen, noise = evaluation_draw(cfg, train_windows, test_windows)
    n = len(held)

    def distance(a: torch.Tensor) -> float:
        return window_distance(cfg, a, held)

    samples, swd, rough = {}, {}, {"held-out data": roughness(held)}
    for k in cfg.eval.steps:
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
        shares = band_shares(cfg, test_windows, {"held-out data": held, "training data": seen}
                             | {f"{k}-step": x for k, x in samples.items()})
        out["hold_out_speed"] = {"band": list(cfg.data.hold_out_speed), "share": shares}
    return out


def roughness(windows: torch.Tensor) -> float:
    """Mean squared second difference along time, in normalized units: the step-to-step jitter a
    distance between whole windows barely sees (compare with the held-out data's)."""
    return float(windows.diff(n=2, dim=1).pow(2).mean())


def plot_windows(panels: list[tuple[str, np.ndarray]], columns: list[str], path: Path, count: int, title: str) -> None:
    """Raw windows (N, H, D) as paths in the plane of the first two state columns (one column:
    against time), one panel per (label, windows)."""

    fig, axes = pyplot().subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), sharex=True, sharey=True, squeeze=False)
    for ax, (label, raw) in zip(axes[0], panels, strict=True):
        for window in raw[:count]:
            if len(columns) >= 2:
                ax.plot(window[:, 0], window[:, 1], lw=0.8)
            else:
                ax.plot(window[:, 0], lw=0.8)
        ax.set_title(label)
    axes[0][0].set_xlabel(columns[0] if len(columns) >= 2 else "step")
    axes[0][0].set_ylabel(columns[1] if len(columns) >= 2 else columns[0])
    fig.suptitle(title)
    save_png(fig, path)


def load_model(checkpoint: str | Path, which: str = "ema"):
    """(model, cfg, normalizer, meta) from a motion checkpoint."""

    model, cfg, meta = load_task_model(checkpoint, "motion", Config, build_model, which)
    if "normalizer" not in meta:
        raise UserError(f"checkpoint {checkpoint} has no normalizer in its metadata")
    return model, cfg, Normalizer.from_state_dict(meta["normalizer"]), meta


def time_step(store) -> float:
    """The median time between consecutive rows of an episode; 1 where time is not numeric."""
    try:
        time = np.asarray(store.extras["time"], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        return 1.0
    steps = np.concatenate([np.diff(time[s:e]) for s, e in zip(store.starts, store.ends, strict=True)])
    steps = steps[np.isfinite(steps) & (steps > 0)]
    return float(np.median(steps)) if len(steps) else 1.0


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
             episodes: int | None = None, overrides=(), **_) -> dict:
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
    train_windows, test_windows = load_windows(cfg, normalizer)
    mode = ModularMeanFlow(cfg.objective).sampling_mode
    return evaluate_model(model, cfg, mode, train_windows, test_windows,
                          plot_path=out / "samples.png" if out else None)


TASK = Task("motion", Config, default_config, train, PRESETS, default_preset, evaluate, sample_files, check=check_eval)
