"""PointMaze datasets in Minari's format, by the recipe of Minari's `D4RL/pointmaze/*` datasets.

Recipe (Farama's minari-dataset-generation-scripts, pointmaze): one continuous run of the
waypoint expert (envs/pointmaze.py) in `PointMaze_*-v3` with `continuing_task=True,
reset_target=True` (a new random goal cell, plus U(-0.25, 0.25) noise, whenever the ball is
within 0.45 of the current one), N(0, 0.5²) noise added to every action and clipped to [-1, 1],
first reset seeded; an episode ends (truncation) at every step the ball reaches its goal, and the
next one starts from that observation. Observations are PointMaze's dicts (observation,
achieved_goal, desired_goal), infos hold qpos, qvel, goal and success. Reference returns are the
committed table's (same recipe; envs/pointmaze/).
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.progress import track

from ..envs.pointmaze import (
    ACTION_NOISE,
    POINTMAZE,
    PointMazeExpert,
    check_env_id,
    make_gym_env,
    reference_returns,
)
from ..errors import UserError
from .minari_io import _datasets_root, _minari

DEFAULT_STEPS = 1_000_000  # as Minari's D4RL/pointmaze datasets
DATASET_IDS = {e: f"mmftraj/pointmaze-{spec.maze}-v0" for e, spec in POINTMAZE.items()}


def default_root() -> Path:
    return Path("datasets") / "pointmaze"


def dataset_dir(root: str | Path, dataset_id: str) -> Path:
    return Path(root) / dataset_id


@dataclass
class Collected:
    path: Path
    steps: int
    episodes: int
    seconds: float


def generate_pointmaze(env_id: str, steps: int = DEFAULT_STEPS, seed: int = 0, root: str | Path | None = None,
                       dataset_id: str | None = None, overwrite: bool = False, progress: bool = True) -> Collected:
    """Run the recipe for `steps` steps and write Minari dataset `dataset_id` under `root`."""
    check_env_id(env_id)
    if steps < 2:
        raise UserError(f"--samples must be at least 2 for a PointMaze dataset, got {steps}")
    minari = _minari()
    from minari.data_collector import EpisodeBuffer

    root = Path(root if root is not None else default_root()).resolve()
    dataset_id = dataset_id or DATASET_IDS[env_id]
    if root.exists() and not root.is_dir():
        raise UserError(f"--out {root} is a file; a PointMaze dataset is written into a Minari datasets folder "
                        f"(as {DATASET_IDS[env_id]}/ under it)")
    target = dataset_dir(root, dataset_id)
    if target.exists() and not overwrite:
        raise UserError(f"Minari dataset {target} already exists; pass --overwrite to replace it")
    env = make_gym_env(env_id, evaluation=False)
    rng = np.random.default_rng(seed)
    expert = PointMazeExpert(env, rng)
    obs, info = env.reset(seed=seed)
    t0 = time.perf_counter()

    def fresh(first_obs, first_info):
        return {"obs": [first_obs], "actions": [], "rewards": [], "success": [bool(first_info.get("success", False))]}

    episodes, ep = [], fresh(obs, info)
    for n in track(range(steps), description=f"{env_id}: recipe run", disable=not progress):
        action = np.clip(expert(obs) + rng.normal(0.0, ACTION_NOISE, size=2), -1.0, 1.0)
        obs, reward, _, _, info = env.step(action.astype(np.float32))
        ep["obs"].append(obs)
        ep["actions"].append(action)
        ep["rewards"].append(reward)
        ep["success"].append(bool(info["success"]))
        if info["success"] or n == steps - 1:
            episodes.append(ep)
            ep = fresh(obs, info)
    seconds = time.perf_counter() - t0
    buffers = [_buffer(k, e, EpisodeBuffer) for k, e in enumerate(episodes)]
    ref_min, ref_max = reference_returns(env_id)
    eval_env = make_gym_env(env_id, evaluation=True)
    if target.exists():
        shutil.rmtree(target)
    root.mkdir(parents=True, exist_ok=True)
    try:
        with _datasets_root(root):
            minari.create_dataset_from_buffers(
                dataset_id, buffers, env=env, eval_env=eval_env, algorithm_name="QIteration waypoint expert",
                ref_min_score=ref_min, ref_max_score=ref_max, code_permalink="mmftraj (mmftraj/data/pointmaze.py)",
                author="mmftraj", author_email="none@localhost",
                description=f"{env_id}, {steps} steps by the recipe of Minari's D4RL/pointmaze datasets, seed {seed}")
    except Exception as exc:  # a half-written dataset would block the retry
        shutil.rmtree(target, ignore_errors=True)
        raise UserError(f"Minari could not write {target}: {type(exc).__name__}: {exc}") from None
    finally:
        env.close()
        eval_env.close()
    return Collected(target, steps, len(episodes), seconds)


def _buffer(k: int, ep: dict, EpisodeBuffer):
    obs = {key: np.stack([o[key] for o in ep["obs"]]) for key in ("observation", "achieved_goal", "desired_goal")}
    t = len(ep["actions"])
    truncations = np.zeros(t, dtype=bool)
    truncations[-1] = ep["success"][-1]  # the recipe's episode boundary: the goal was reached
    infos = {"qpos": obs["observation"][:, :2].copy(), "qvel": obs["observation"][:, 2:4].copy(),
             "goal": obs["desired_goal"].copy(), "success": np.asarray(ep["success"])}
    return EpisodeBuffer(id=k, observations=obs, actions=np.asarray(ep["actions"], dtype=np.float32),
                         rewards=np.asarray(ep["rewards"], dtype=np.float64), terminations=np.zeros(t, dtype=bool),
                         truncations=truncations, infos=infos)
