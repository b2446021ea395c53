"""Datasets: formats (D4RL HDF5, Minari, CSV/Parquet), the maze2d generator, windows, normalizers.

Usage::

    from mmftraj.data import load_episodes, WindowDataset, Normalizer
    store = load_episodes("datasets/maze2d/maze2d-umaze-v1.hdf5")  # EpisodeStore (maze2d: split at goal changes)
    # also: a Minari dataset directory, or a .csv/.parquet table (see mmftraj.data.tables.load_table)
    store.observations (N, 4), store.actions (N, 2), store.starts / store.ends, store.episode(k), store.extras
    windows = WindowDataset(store, horizon=128, normalizer="limits")     # or "gaussian", a Normalizer, None
    batch = windows.sample(64, generator=torch.Generator().manual_seed(0))
    batch.trajectories  # (64, 128, obs_dim + act_dim) float32, normalized, [observations | actions]
    batch.start, batch.goal  # (64, obs_dim): first / last normalized observation (conditioning targets)
    obs, act = windows.split(batch.trajectories); raw = windows.unnormalize(batch.trajectories)
    state = windows.normalizer.state_dict()  # JSON-able; Normalizer.from_state_dict(state) restores it
    cond = windows.normalize_obs(torch.tensor([x, y, 0.0, 0.0]))      # raw start/goal -> model space

Make maze2d data with `mmftraj data generate maze2d-umaze-v1` (mmftraj.data.generate.generate).
"""

from __future__ import annotations

from pathlib import Path

from .d4rl import load_d4rl
from .minari_io import load_minari
from .normalizers import Normalizer
from .store import EpisodeStore
from .tables import load_table
from .windows import WindowBatch, WindowDataset


def load_episodes(path: str | Path, **kwargs) -> EpisodeStore:
    """Load any supported dataset by its path: .hdf5/.h5 (D4RL), .csv/.parquet (table), a directory
    (Minari). Keyword arguments go to the format's loader (e.g. split="timeouts" for D4RL)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".parquet", ".pq"):
        return load_table(path, **kwargs)
    if path.is_dir():
        return load_minari(path)

    return load_d4rl(path, **kwargs)


__all__ = ["EpisodeStore", "Normalizer", "WindowBatch", "WindowDataset", "load_episodes"]
