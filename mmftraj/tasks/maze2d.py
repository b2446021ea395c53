"""maze2d: learn (H, 4) observation windows with an MMF objective and plan with one evaluation.

`mmftraj train --task maze2d --maze umaze` generates the dataset on first use, trains a temporal
transformer conditioned on the window's first observation and last position, and (by default)
scores a few rollouts; `mmftraj eval --task maze2d --checkpoint RUN` runs the full evaluation
(mmftraj.planning.rollouts). Plans hold observations only: the tracking controller never reads
planned actions (Diffuser's own actions score 6.3 / 13.5 / 6.3, as its paper reports).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..checkpoint import load_task_model
from ..config import apply_overrides, check_eval_overrides, to_dict
from ..core import ModularMeanFlow, ObjectiveConfig
from ..data import Normalizer, load_episodes
from ..data.default_datasets import default_dataset
from ..data.pointmaze import DATASET_IDS
from ..data.splits import prepare_windows
from ..envs.disturbances import Disturbances
from ..envs.layouts import load_layout
from ..envs.maze2d import env_layout, episode_length
from ..envs.pointmaze import POINTMAZE
from ..errors import UserError
from ..models.start_goal import StartGoalNet
from ..models.transformer import TransformerConfig, build_transformer, check_task_sizes, count_parameters
from ..planning.rollouts import RolloutConfig, evaluate_planner
from ..training import TrainConfig, Trainer
from . import Task

MAZES = {"umaze": "maze2d-umaze-v1", "medium": "maze2d-medium-v1", "large": "maze2d-large-v1"}
PRESETS = tuple(MAZES)
OBS_DIM, GOAL_DIM = 4, 2
REST_COLUMNS = (2, 3, 4, 5)  # velocities and actions: zero while a padded window waits at its goal


@dataclass
class DataConfig:
    # d4rl's maze2d (generated here), or gymnasium-robotics' PointMaze (data.path: a Minari dataset)
    env: Literal["maze2d-umaze-v1", "maze2d-medium-v1", "maze2d-large-v1", "PointMaze_UMaze-v3", "PointMaze_Medium-v3",
                 "PointMaze_Large-v3"] = "maze2d-umaze-v1"
    path: str | None = None  # None: datasets/maze2d/<env>.hdf5, generated on first use
    horizon: int = 128
    normalizer: Literal["limits", "gaussian"] = "limits"
    split: str | None = None  # a split (envs/splits name or YAML path) applied to the training data
    fraction: float = 1.0  # nested low-data subset: this fraction of the episodes (by subset_seed)
    subset_seed: int = 0
    # Windows may run past their episode's end (the controller's goal), continuing at rest at the
    # final position: every start is covered and "get there, then stay" is what plans learn.
    # False: only windows inside episodes of at least `horizon` steps (Diffuser without padding).
    pad: bool = True


@dataclass
class ModelConfig:
    width: int = 128
    depth: int = 4
    heads: int = 4
    patch: int = 4  # time steps per token: horizon / patch tokens
    mlp_ratio: float = 4.0
    conditioning: Literal["inpaint", "vector", "both"] = "both"
    # Train with the goal at a random step (≥ horizon/8) and tell the network which: plans can then
    # reach near goals early instead of the last step (see models.start_goal.StartGoalNet).
    goal_anywhere: bool = False


@dataclass
class Config:
    # c on the per-sample sum: 1e-3 per learned entry of U-Maze's 128 × 4 window (6 are pinned),
    # the weighting the mazes were measured with; maze2d-medium/large.yaml scale it to their H
    objective: ObjectiveConfig = field(default_factory=lambda: ObjectiveConfig(lambda_warmup=2000, adaptive_c=0.506))
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(
            steps=4000, batch_size=64, lr=5e-4, warmup_steps=200, ema_decay=0.999, log_every=50, ckpt_every=1000
        )
    )
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    eval: RolloutConfig = field(default_factory=RolloutConfig)


def default_config(preset: str | None = None) -> Config:
    cfg = Config()
    if preset is not None:
        cfg.data.env = MAZES[preset]
    return cfg


def default_preset(cfg: Config) -> str:
    if cfg.data.env in POINTMAZE:
        return f"pointmaze-{POINTMAZE[cfg.data.env].maze}"
    return {v: k for k, v in MAZES.items()}[cfg.data.env]


# -- data ----------------------------------------------------------------------------------------
def _check_manifest_layout(path: Path, env: str) -> None:
    """A file that `mmftraj data generate` made for another maze would train a planner on walls
    that are not there; its manifest says which maze it is (files from elsewhere have none)."""

    manifest = path.with_suffix(".json")
    if not manifest.is_file():
        return
    try:
        layout = json.loads(manifest.read_text())["recipe"]["layout"]
        walls = load_layout(layout).walls
    except (ValueError, KeyError, TypeError, UserError):
        return
    ours = load_layout(env_layout(env)).walls
    if walls.shape != ours.shape or not np.array_equal(walls, ours):  # eval mazes share walls, not goals
        raise UserError(f"dataset {path} was generated for the {layout} maze ({manifest.name}), but data.env is "
                        f"{env} ({env_layout(env)}); pick the matching --maze or dataset")


# Recorded in this maze: all positions free (1.0 on U-Maze's 1e6 steps); another maze's: 0.55-0.81.
MIN_FREE_SHARE = 0.99


def _check_positions(xy: np.ndarray, env: str, path) -> None:
    """Data of another maze (a Minari export, a file without a manifest) would train a planner on
    walls that are not there; its positions give it away, whatever the file says about itself."""
    layout = env_layout(env)
    share = load_layout(layout).free_share(xy[:: max(1, len(xy) // 200_000)])
    if share < MIN_FREE_SHARE:
        raise UserError(f"{100 * (1 - share):.0f} % of the dataset's positions ({path or 'the default dataset'}) lie "
                        f"inside walls or outside the {layout} maze of data.env {env}: it was recorded in another "
                        f"maze; pick the matching --maze (and data.env) or dataset")


def dataset_path(cfg: Config, progress: bool = True) -> Path:
    """data.path, checked; without one the env's default dataset (generated when missing, see
    mmftraj.data.default_datasets)."""
    if cfg.data.path is None:
        return default_dataset(cfg.data.env, progress=progress)
    path = Path(cfg.data.path)
    if not path.exists() and cfg.data.env in POINTMAZE:
        raise UserError(f"dataset not found: {path} (data.path); `mmftraj data generate {cfg.data.env} --out DIR` "
                        f"writes DIR/{DATASET_IDS[cfg.data.env]}, or drop data.path for the default one")
    if not path.exists():
        raise UserError(f"dataset not found: {path} (data.path); generate one with "
                        f"`mmftraj data generate {cfg.data.env} --out {path}` or drop data.path")
    _check_manifest_layout(path, cfg.data.env)
    return path


def load_windows(cfg: Config, progress: bool = True):
    store = load_episodes(dataset_path(cfg, progress=progress))
    source_env = store.meta.get("env_id")
    if source_env in POINTMAZE and source_env != cfg.data.env:
        raise UserError(f"the Minari dataset {cfg.data.path} was collected in {source_env}, but data.env is "
                        f"{cfg.data.env}; set data.env={source_env} (and the matching --maze)")
    if cfg.data.env in POINTMAZE and source_env not in POINTMAZE:
        raise UserError(f"data.env {cfg.data.env} trains on a PointMaze Minari dataset "
                        f"(`mmftraj data generate {cfg.data.env}`); {cfg.data.path} is not one")
    if store.obs_dim != OBS_DIM:
        raise UserError(f"maze2d needs 4-D observations (x, y, vx, vy); the dataset has {store.obs_dim}")
    _check_positions(store.observations[:, :2], cfg.data.env, cfg.data.path)

    goal_from = max(1, cfg.data.horizon // 8) if cfg.model.goal_anywhere else None  # as make_batch_fn
    return prepare_windows(store, cfg.data.horizon, cfg.data.normalizer, cfg.data.split, cfg.data.fraction,
                           cfg.data.subset_seed, layout=env_layout(cfg.data.env), goal_from=goal_from,
                           pad=cfg.data.pad, rest_columns=REST_COLUMNS)


def obs_normalizer(windows):
    norm = windows.normalizer
    return Normalizer(norm.kind, norm.shift[:OBS_DIM], norm.scale[:OBS_DIM])


# -- model ---------------------------------------------------------------------------------------
def build_model(cfg: Config) -> StartGoalNet:
    m = cfg.model
    check_task_sizes(cfg.data.horizon, m.width, m.depth, m.heads, m.patch)
    cond_dim = OBS_DIM + GOAL_DIM + int(m.goal_anywhere) if m.conditioning in ("vector", "both") else 0
    tcfg = TransformerConfig(horizon=cfg.data.horizon, dim_in=OBS_DIM, width=m.width, depth=m.depth, heads=m.heads,
                             patch=m.patch, cond_dim=cond_dim, mlp_ratio=m.mlp_ratio, attention="fast")
    return StartGoalNet(build_transformer(tcfg), OBS_DIM, GOAL_DIM, m.conditioning, m.goal_anywhere)


def make_batch_fn(windows, net: StartGoalNet, batch_size: int):
    """Windows with their first observation as start and last (or a random later) position as goal."""
    h = net.horizon
    fixed_mask = net.loss_mask() if net.inpaint and not net.goal_anywhere else None

    def batch_fn(generator: torch.Generator, step: int) -> dict:
        x = windows.sample(batch_size, generator).trajectories[..., :OBS_DIM]
        if net.goal_anywhere:
            idx = torch.randint(max(1, h // 8), h, (batch_size,), generator=generator)
            goal = x[torch.arange(batch_size), idx, :GOAL_DIM].clone()
            batch = {"x": x, "cond": {"start": x[:, 0].clone(), "goal": goal, "goal_index": idx}}
            if net.inpaint:
                batch["loss_mask"] = net.loss_mask(batch_size, idx)
            return batch
        batch = {"x": x, "cond": {"start": x[:, 0].clone(), "goal": x[:, -1, :GOAL_DIM].clone()}}
        if fixed_mask is not None:
            batch["loss_mask"] = fixed_mask
        return batch

    return batch_fn


def train(cfg: Config, run_dir: Path, resume: bool = False, progress: bool = True) -> dict:
    if cfg.eval.train_episodes < 0:
        raise UserError(f"eval.train_episodes must be 0 (no check) or more, got {cfg.eval.train_episodes}")

    torch.manual_seed(cfg.train.seed)
    windows = load_windows(cfg, progress=progress)
    net = build_model(cfg)
    objective = ModularMeanFlow(cfg.objective)
    meta = {"task": "maze2d", "config": to_dict(cfg), "normalizer": obs_normalizer(windows).state_dict()}
    trainer = Trainer(net, objective, make_batch_fn(windows, net, cfg.train.batch_size), cfg.train, run_dir,
                      meta=meta, progress=progress)
    fit = trainer.fit(resume=resume)
    results = {"objective": cfg.objective.variant, "env": cfg.data.env, "windows": len(windows),
               "parameters": count_parameters(net), **fit}
    if cfg.eval.train_episodes > 0:
        net = trainer.ema.cpu().eval()
        ev = evaluate_planner(net, obs_normalizer(windows), cfg.eval, cfg.eval.env or cfg.data.env,
                              objective.sampling_mode, episodes=cfg.eval.train_episodes, out=Path(run_dir),
                              progress=progress)
        results["eval"] = ev
    return results


# -- checkpoints and evaluation -------------------------------------------------------------------
def load_model(checkpoint: str | Path, which: str = "ema"):
    """(net, cfg, normalizer) from a maze2d checkpoint; other tasks and shapes are UserErrors."""

    net, cfg, meta = load_task_model(checkpoint, "maze2d", Config, build_model, which)
    if "normalizer" not in meta:
        raise UserError(f"checkpoint {checkpoint} has no normalizer in its metadata")
    return net, cfg, Normalizer.from_state_dict(meta["normalizer"])


def evaluate(checkpoint: str | Path, steps: list[int] | None = None, episodes: int | None = None, seed: int = 0,
             out: Path | None = None, overrides=(), progress: bool = True) -> dict:
    net, cfg, normalizer = load_model(checkpoint)
    check_eval_overrides(overrides)
    cfg = apply_overrides(cfg, list(overrides))
    if episodes is not None:
        if episodes < 1:
            raise UserError(f"--episodes must be at least 1, got {episodes}")
        cfg.eval.episodes = episodes
    check_eval(cfg.eval, cfg.eval.env or cfg.data.env)
    mode = ModularMeanFlow(cfg.objective).sampling_mode
    if not steps:
        steps = [cfg.eval.fm_steps if mode == "euler" else cfg.eval.steps]
    results = {"objective": cfg.objective.variant, "sampling": mode}
    for k in steps:
        cfg.eval.steps = int(k)
        sub = out / f"steps{k}" if out is not None and len(steps) > 1 else out
        results[f"{k}-step"] = evaluate_planner(net, normalizer, cfg.eval, cfg.eval.env or cfg.data.env, mode,
                                                 episodes=cfg.eval.episodes, seed=seed,
                                                out=sub, progress=progress)
    return results


def check_eval(e: RolloutConfig, env: str | None = None) -> None:
    """eval.* values the rollouts after training (or `eval`) could only fail on, refused first;
    with the evaluation `env`, also disturbances that env cannot have."""
    at_least = {"episodes": 1, "steps": 1, "fm_steps": 1, "candidates": 1, "smooth": 1, "latency_repeats": 1,
                "train_episodes": 0, "replan_every": 0, "plots": 0, "blend": 1}
    bad = [f"eval.{k} must be at least {low}, got {getattr(e, k)}"
           for k, low in at_least.items() if getattr(e, k) < low]
    bad += [f"eval.{k} must be positive, got {getattr(e, k)}"
            for k in ("speed", "goal_radius") if not getattr(e, k) > 0]
    try:
        d = Disturbances.of(e)
    except UserError as err:
        bad.append(str(err))
    else:
        if env is not None and d.pushes and env.split("/")[-1] in POINTMAZE:
            bad.append(f"eval.push_size/push_rate need a maze2d-* env, not {env}")
        if env is not None and d.goal_move_at and d.goal_move_at >= episode_length(env):
            bad.append(f"eval.goal_move_at must be below {env}'s episode length {episode_length(env)} (0: never), "
                       f"got {d.goal_move_at}")
    if bad:
        raise UserError("; ".join(bad))


def check_config(cfg: Config, preset: str | None) -> None:
    check_preset(cfg, preset)
    check_eval(cfg.eval, cfg.eval.env or cfg.data.env)


def check_preset(cfg: Config, preset: str | None) -> None:
    """The maze preset (horizon, steps, replanning, c) must be the data's maze: a Large PointMaze
    dataset under the U-Maze defaults would train and score without a word otherwise."""
    maze = preset or "umaze"  # no preset is the U-Maze preset
    if env_layout(cfg.data.env) != env_layout(MAZES[maze]):
        raise UserError(f"data.env {cfg.data.env} is the {env_layout(cfg.data.env)} maze but the preset is {maze}"
                        f"{'' if preset else ' (the default)'}; add --maze {env_layout(cfg.data.env)}")


TASK = Task("maze2d", Config, default_config, train, PRESETS, default_preset, evaluate, check=check_config)
