"""Minari datasets (local directories) to and from the episode store. Minari is an optional extra.

Mapping: Minari `observations` has T + 1 entries per episode (the final next observation); the
store keeps the first T. rewards <-> rewards, terminations <-> terminals, truncations <-> timeouts,
every other store extra (e.g. infos/goal) <-> `infos[...]` (padded with its last row to T + 1).
Exporting the last episode of a continuous stream repeats its last observation as the final one.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np

from ..envs.layouts import load_layout
from ..envs.pointmaze import POINTMAZE, Frame
from ..errors import UserError
from .store import EpisodeStore


def _minari():
    try:
        import minari
    except ImportError:
        raise UserError("Minari support needs the optional extra: pip install 'mmftraj[minari]'") from None
    return minari


@contextlib.contextmanager
def _datasets_root(root: Path):
    old = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("MINARI_DATASETS_PATH", None)
        else:
            os.environ["MINARI_DATASETS_PATH"] = old


def export_minari(store: EpisodeStore, root: str | Path, dataset_id: str = "mmftraj/maze2d-umaze-v1"):
    """Write the store as Minari dataset `dataset_id` under `root`; returns its directory."""
    minari = _minari()
    from minari.data_collector import EpisodeBuffer

    root = Path(root).resolve()  # minari reads MINARI_DATASETS_PATH from elsewhere than our cwd
    target = root / dataset_id
    if target.exists():
        raise UserError(f"Minari dataset already exists: {target}; remove it or choose another id")
    buffers = []
    n = len(store)
    for k in range(store.num_episodes):
        s, e = int(store.starts[k]), int(store.ends[k])
        last = store.observations[e] if e < n else store.observations[e - 1]
        ep = store.episode(k)
        infos = {key: np.concatenate([v, v[-1:]]) for key, v in ep.items()
                 if key not in ("observations", "actions", "rewards", "terminals", "timeouts")}
        buffers.append(EpisodeBuffer(
            id=k,
            observations=np.concatenate([ep["observations"], last[None]]),
            actions=ep["actions"],
            rewards=ep.get("rewards", np.zeros(e - s, np.float32)),
            terminations=ep.get("terminals", np.zeros(e - s, bool)).astype(bool),
            truncations=ep.get("timeouts", np.zeros(e - s, bool)).astype(bool),
            infos=infos,
        ))
    obs_space = gym.spaces.Box(-np.inf, np.inf, shape=(store.obs_dim,), dtype=np.float32)
    act_space = gym.spaces.Box(-np.inf, np.inf, shape=(store.act_dim,), dtype=np.float32)
    root.mkdir(parents=True, exist_ok=True)
    try:
        with _datasets_root(root), warnings.catch_warnings():  # minari nags about optional metadata
            warnings.simplefilter("ignore", UserWarning)
            minari.create_dataset_from_buffers(dataset_id, buffers, observation_space=obs_space,
                                               action_space=act_space, algorithm_name="mmftraj",
                                               description=f"exported by mmftraj from {store.meta.get('source', '?')}")
    except Exception as exc:  # a half-written dataset would block the retry: it was not there before
        shutil.rmtree(target, ignore_errors=True)
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        raise UserError(f"Minari could not write {target}: {type(exc).__name__}: {first_line}") from None
    return target


def _flatten(tree: dict, prefix: str = "") -> dict[str, np.ndarray]:
    """Nested info dicts as 'a/b' keys (Minari nests keys that contain '/')."""
    out = {}
    for key, v in tree.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{key}/"))
        elif isinstance(v, np.ndarray):
            out[f"{prefix}{key}"] = v
    return out


def load_minari(path: str | Path) -> EpisodeStore:
    """Load a local Minari dataset directory (the one holding `data/`) into an EpisodeStore."""
    minari = _minari()
    path = Path(path)
    data_dir = path / "data" if (path / "data").is_dir() else path
    if not data_dir.is_dir():
        raise UserError(f"Minari dataset not found: {path} (expected a directory with data/ inside)")
    inside = sorted(p.parent for p in path.glob("*/*/data") if p.is_dir()) + sorted(
        p.parent for p in path.glob("*/data") if p.is_dir())
    if not (path / "data").is_dir() and inside:  # a datasets root (e.g. `data generate --out DIR`), not one dataset
        raise UserError(f"{path} holds Minari datasets, not one: give one of {', '.join(map(str, inside[:4]))}")
    try:
        dataset = minari.MinariDataset(data_dir)
    except Exception as exc:  # minari raises assorted errors for unreadable directories
        raise UserError(f"{path}: not a readable Minari dataset ({exc})") from None
    cols: dict[str, list] = {"observations": [], "actions": [], "rewards": [], "terminals": [], "timeouts": []}
    infos: dict[str, list] = {}
    ends = []
    for ep in dataset.iterate_episodes():
        observations = ep.observations
        if isinstance(observations, dict) and "observation" in observations:  # goal-conditioned (PointMaze)
            observations = observations["observation"]
        if not isinstance(observations, np.ndarray):
            raise UserError(f"{path}: only Box observations, or dicts with an 'observation' Box, are supported "
                            f"(got {type(ep.observations).__name__})")
        t = len(ep.actions)
        cols["observations"].append(observations[:t])
        cols["actions"].append(np.asarray(ep.actions).reshape(t, -1))
        cols["rewards"].append(np.asarray(ep.rewards, dtype=np.float32))
        cols["terminals"].append(np.asarray(ep.terminations, dtype=bool))
        cols["timeouts"].append(np.asarray(ep.truncations, dtype=bool))
        for key, v in _flatten(ep.infos or {}).items():
            if len(v) >= t:
                infos.setdefault(key, []).append(v[:t])
        ends.append(t)
    if not ends:
        raise UserError(f"{path}: the Minari dataset has no episodes")
    arrays = {k: np.concatenate(v) for k, v in cols.items()}
    arrays.update({k: np.concatenate(v) for k, v in infos.items() if len(v) == len(ends)})
    env_id = _env_id(dataset)
    if env_id in POINTMAZE:  # into maze2d's frame (envs/pointmaze.py): one planner for both
        _pointmaze_to_maze2d(arrays, POINTMAZE[env_id].maze)
    ends_after = np.zeros(len(arrays["observations"]), dtype=bool)
    ends_after[np.cumsum(ends) - 1] = True
    extras = {k: v for k, v in arrays.items() if k not in ("observations", "actions")}
    return EpisodeStore.from_arrays(arrays["observations"], arrays["actions"], ends_after, extras,
                                    source=str(path), meta={"format": "minari", "env_id": env_id})


def _env_id(dataset) -> str | None:
    """The gymnasium id the dataset was collected in (None when it does not say)."""
    spec = getattr(dataset.spec, "env_spec", None)
    return None if spec is None else str(spec.id).split("/")[-1]


def _pointmaze_to_maze2d(arrays: dict, maze: str) -> None:
    """Positions, velocities, actions and goals of a PointMaze dataset into maze2d's frame, in place."""
    rows, cols = load_layout(maze).shape
    frame = Frame(x_center=cols / 2, y_center=rows / 2)  # gymnasium-robotics: map size / 2 × scaling (1)
    arrays["observations"] = frame.observation_in(arrays["observations"]).astype(np.float32)
    arrays["actions"] = frame.vector_in(arrays["actions"]).astype(np.float32)
    for key in ("infos/goal", "infos/qpos"):
        if key in arrays:
            arrays[key] = frame.position_in(arrays[key]).astype(np.float32)
    if "infos/qvel" in arrays:
        arrays["infos/qvel"] = frame.vector_in(arrays["infos/qvel"]).astype(np.float32)
