"""maze2d: learn (H, 4) observation windows with an MMF objective and plan with one evaluation.

`mmftraj train --task maze2d --maze umaze` generates the dataset on first use, trains a temporal
transformer conditioned on the window's first observation and last position, and (by default)
scores a few rollouts; `mmftraj eval --task maze2d --checkpoint RUN` runs the full evaluation
(mmftraj.planning.rollouts). Plans hold observations only: the tracking controller never reads
planned actions (Diffuser's own actions score 6.3 / 13.5 / 6.3, as its paper reports).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from ..checkpoint import load_task_model
from ..config import apply_overrides, check_eval_overrides, to_dict
from ..core import ModularMeanFlow, ObjectiveConfig
from ..data import Normalizer
from ..data.maze2d import OBS_DIM, DataConfig, load_windows
from ..envs.disturbances import Disturbances
from ..envs.maze2d import env_layout, episode_length
from ..envs.pointmaze import POINTMAZE
from ..errors import UserError
from ..models.start_goal import StartGoalNet, training_batches
from ..models.transformer import TransformerConfig, build_transformer, check_task_sizes, count_parameters
from ..planning.rollouts import RolloutConfig, evaluate_planner
from ..training import TrainConfig, Trainer
from . import Task

MAZES = {"umaze": "maze2d-umaze-v1", "medium": "maze2d-medium-v1", "large": "maze2d-large-v1"}
PRESETS = tuple(MAZES)
GOAL_DIM = 2


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


# -- model ---------------------------------------------------------------------------------------
def build_model(cfg: Config) -> StartGoalNet:
    m = cfg.model
    check_task_sizes(cfg.data.horizon, m.width, m.depth, m.heads, m.patch)
    cond_dim = OBS_DIM + GOAL_DIM + int(m.goal_anywhere) if m.conditioning in ("vector", "both") else 0
    tcfg = TransformerConfig(horizon=cfg.data.horizon, dim_in=OBS_DIM, width=m.width, depth=m.depth, heads=m.heads,
                             patch=m.patch, cond_dim=cond_dim, mlp_ratio=m.mlp_ratio, attention="fast")
    return StartGoalNet(build_transformer(tcfg), OBS_DIM, GOAL_DIM, m.conditioning, m.goal_anywhere)


def train(cfg: Config, run_dir: Path, resume: bool = False, progress: bool = True) -> dict:
    if cfg.eval.train_episodes < 0:
        raise UserError(f"eval.train_episodes must be 0 (no check) or more, got {cfg.eval.train_episodes}")

    torch.manual_seed(cfg.train.seed)
    windows = load_windows(cfg.data, cfg.model.goal_anywhere, progress=progress)
    net = build_model(cfg)
    parameters = count_parameters(net)
    batch_fn = training_batches(net, windows, cfg.train.batch_size)
    objective = ModularMeanFlow(cfg.objective)
    meta = {"task": "maze2d", "config": to_dict(cfg), "normalizer": windows.obs_normalizer().state_dict()}
    trainer = Trainer(net, objective, batch_fn, cfg.train, run_dir, meta=meta, progress=progress)
    fit = trainer.fit(resume=resume)
    results = {"objective": cfg.objective.variant, "env": cfg.data.env, "windows": len(windows),
               "parameters": parameters, **fit}
    if cfg.eval.train_episodes > 0:
        net = trainer.ema.cpu().eval()
        ev = evaluate_planner(net, windows.obs_normalizer(), cfg.eval, cfg.eval.env or cfg.data.env,
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
                "train_episodes": 0, "replan_every": 0, "plots": 0, "blend": 1, "lookahead": 1}
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
