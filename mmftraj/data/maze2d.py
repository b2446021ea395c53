"""maze2d's data: the dataset of a maze (D4RL's recipe generated here, a file of the user's, or a
PointMaze Minari dataset), checked against the maze it claims, cut into training windows.

Why the checks: data of another maze would train a planner on walls that are not there, and
nothing downstream would notice; a manifest or the positions themselves give it away.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ..envs.layouts import Layout, load_layout
from ..envs.maze2d import env_layout
from ..envs.pointmaze import POINTMAZE
from ..errors import UserError
from . import load_episodes
from .default_datasets import default_dataset
from .pointmaze import DATASET_IDS
from .splits import prepare_windows

OBS_DIM = 4  # x, y, vx, vy
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



def _manifest_maze(path: Path) -> tuple[str, np.ndarray] | None:
    """(layout, its walls) as named in the manifest `mmftraj data generate` writes beside a file;
    None for a file from elsewhere (no manifest) or a manifest that names no layout to load."""
    manifest = path.with_suffix(".json")
    if not manifest.is_file():
        return None
    try:
        name = json.loads(manifest.read_text())["recipe"]["layout"]
        return name, load_layout(name).walls
    except (ValueError, KeyError, TypeError, UserError):
        return None


# Recorded in this maze: all positions free (1.0 on U-Maze's 1e6 steps); another maze's: 0.55-0.81.
MIN_FREE_SHARE = 0.99


def _check_maze(store, layout: Layout, d: DataConfig) -> None:
    """The dataset checked against data.env's maze (`layout`), in one place: data of another maze
    would train a planner on walls that are not there, and nothing downstream would notice.

    A file that `mmftraj data generate` made says which maze it is in its manifest (eval mazes
    share walls, not goals, so walls are compared). Positions give any file away (a Minari export,
    a file without a manifest), whatever it says about itself."""
    path = Path(d.path) if d.path is not None else None  # None: the default dataset, made for data.env
    claimed = _manifest_maze(path) if path is not None else None
    if claimed is not None:
        name, walls = claimed
        if walls.shape != layout.walls.shape or not np.array_equal(walls, layout.walls):
            raise UserError(f"dataset {path} was generated for the {name} maze ({path.with_suffix('.json').name}), "
                            f"but data.env is {d.env} ({layout.name}); pick the matching --maze or dataset")
    xy = store.observations[:, :2]
    share = layout.free_share(xy[:: max(1, len(xy) // 200_000)])
    if share < MIN_FREE_SHARE:
        raise UserError(f"{100 * (1 - share):.0f} % of the dataset's positions ({d.path or 'the default dataset'}) "
                        f"lie inside walls or outside the {layout.name} maze of data.env {d.env}: it was recorded in "
                        f"another maze; pick the matching --maze (and data.env) or dataset")


def dataset_path(d: DataConfig, progress: bool = True) -> Path:
    """data.path, checked; without one the env's default dataset (generated when missing, see
    mmftraj.data.default_datasets)."""
    if d.path is None:
        return default_dataset(d.env, progress=progress)
    path = Path(d.path)
    if not path.exists() and d.env in POINTMAZE:
        raise UserError(f"dataset not found: {path} (data.path); `mmftraj data generate {d.env} --out DIR` "
                        f"writes DIR/{DATASET_IDS[d.env]}, or drop data.path for the default one")
    if not path.exists():
        raise UserError(f"dataset not found: {path} (data.path); generate one with "
                        f"`mmftraj data generate {d.env} --out {path}` or drop data.path")
    return path


def load_windows(d: DataConfig, goal_anywhere: bool = False, progress: bool = True):
    """The training windows of data section `d`: the dataset loaded, checked against its maze
    (_check_maze), then split, subset and normalized (mmftraj.data.splits.prepare_windows). The
    maze's Layout is loaded once, here, for the check and the split. `goal_anywhere`: windows whose
    goal may sit at any step from horizon/8 on, so every start has such a goal."""
    store = load_episodes(dataset_path(d, progress=progress))
    source_env = store.meta.get("env_id")
    if source_env in POINTMAZE and source_env != d.env:
        raise UserError(f"the Minari dataset {d.path} was collected in {source_env}, but data.env is "
                        f"{d.env}; set data.env={source_env} (and the matching --maze)")
    if d.env in POINTMAZE and source_env not in POINTMAZE:
        raise UserError(f"data.env {d.env} trains on a PointMaze Minari dataset "
                        f"(`mmftraj data generate {d.env}`); {d.path} is not one")
    if store.obs_dim != OBS_DIM:
        raise UserError(f"maze2d needs 4-D observations (x, y, vx, vy); the dataset has {store.obs_dim}")
    layout = load_layout(env_layout(d.env))
    _check_maze(store, layout, d)

    goal_from = max(1, d.horizon // 8) if goal_anywhere else None  # as the task's batches draw goals
    return prepare_windows(store, d.horizon, d.normalizer, d.split, d.fraction, d.subset_seed, layout=layout,
                           goal_from=goal_from, pad=d.pad, rest_columns=REST_COLUMNS)
