"""One in-memory episode store that every dataset format loads into.

Why one store: training only needs contiguous arrays and episode boundaries; formats (D4RL HDF5,
Minari, CSV/Parquet) differ only in how they get there. Steps of all episodes are concatenated;
episode k is rows `starts[k]:ends[k]`. `extras` keeps every other per-step array of the source
(rewards, timeouts, infos/goal, ...) under its original key, so exports lose nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import UserError


@dataclass
class EpisodeStore:
    """Concatenated steps + episode bounds. observations (N, obs_dim), actions (N, act_dim) float32."""

    observations: np.ndarray
    actions: np.ndarray
    starts: np.ndarray  # (E,) int64, first row of each episode
    ends: np.ndarray  # (E,) int64, one past the last row
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    episode_meta: list[dict] = field(default_factory=list)  # one dict per episode (ids, source)
    meta: dict = field(default_factory=dict)  # dataset-level facts (source path, env name, split)

    def __post_init__(self):
        self.observations = np.asarray(self.observations, dtype=np.float32)
        self.actions = np.asarray(self.actions, dtype=np.float32)
        self.starts = np.asarray(self.starts, dtype=np.int64)
        self.ends = np.asarray(self.ends, dtype=np.int64)
        if not self.episode_meta:
            self.episode_meta = [{} for _ in range(len(self.starts))]

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_arrays(cls, observations, actions, ends_after, extras=None, source: str = "arrays",
                    meta: dict | None = None, episode_meta: list[dict] | None = None) -> EpisodeStore:
        """Build from a step stream; `ends_after[t]` True means an episode ends after step t.

        Validates lengths (naming key and lengths) and refuses NaN/inf rows (with their count).
        """
        arrays = {"observations": observations, "actions": actions, **(extras or {})}
        check_arrays(arrays, source)
        n = len(observations)
        ends = np.flatnonzero(np.asarray(ends_after, dtype=bool)[:n]) + 1
        if len(ends) == 0 or ends[-1] != n:
            ends = np.append(ends, n)
        starts = np.concatenate([[0], ends[:-1]])
        return cls(np.asarray(observations), np.asarray(actions), starts, ends,
                   {k: np.asarray(v) for k, v in (extras or {}).items()},
                   episode_meta or [], dict(meta or {}, source=source))

    # -- queries -------------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.observations)

    @property
    def num_episodes(self) -> int:
        return len(self.starts)

    @property
    def lengths(self) -> np.ndarray:
        return self.ends - self.starts

    @property
    def obs_dim(self) -> int:
        return self.observations.shape[1]

    @property
    def act_dim(self) -> int:
        return self.actions.shape[1]

    def episode(self, k: int) -> dict[str, np.ndarray]:
        """Arrays of episode k: observations, actions and every extra, sliced to its rows."""
        s, e = int(self.starts[k]), int(self.ends[k])
        out = {"observations": self.observations[s:e], "actions": self.actions[s:e]}
        out.update({key: v[s:e] for key, v in self.extras.items()})
        return out

    def take(self, index) -> EpisodeStore:
        """A new store of the episodes `index` (in that order), rows re-concatenated."""
        index = np.asarray(index, dtype=np.int64)
        lengths = self.lengths[index]
        rows = (np.concatenate([np.arange(self.starts[k], self.ends[k]) for k in index])
                if len(index) else np.zeros(0, dtype=np.int64))
        ends = np.cumsum(lengths)
        return EpisodeStore(self.observations[rows], self.actions[rows], ends - lengths, ends,
                            {k: v[rows] for k, v in self.extras.items()},
                            [self.episode_meta[k] for k in index], dict(self.meta))

    def filter(self, min_length: int) -> EpisodeStore:
        """A store of the episodes with at least `min_length` steps."""
        return self.take(np.flatnonzero(self.lengths >= min_length))

    def summary(self) -> dict:
        lengths = self.lengths
        return {"steps": len(self), "episodes": self.num_episodes, "obs_dim": self.obs_dim,
                "act_dim": self.act_dim, "min_length": int(lengths.min()) if len(lengths) else 0,
                "mean_length": float(lengths.mean()) if len(lengths) else 0.0,
                "max_length": int(lengths.max()) if len(lengths) else 0}


def check_arrays(arrays: dict[str, np.ndarray], source: str) -> None:
    """Same first dimension everywhere; 2-D observations/actions; at least one step; no NaN/inf rows."""
    n = len(arrays["observations"])
    if n == 0:
        raise UserError(f"{source}: the dataset holds no steps (empty 'observations'); generate or export it again")
    for key, value in arrays.items():
        if len(value) != n:
            raise UserError(
                f"{source}: inconsistent lengths: '{key}' has {len(value)} rows but 'observations' has {n}"
            )
    for key in ("observations", "actions"):
        a = np.asarray(arrays[key])
        if a.ndim != 2:
            raise UserError(f"{source}: '{key}' must be 2-D (steps, features), got shape {a.shape}")
    bad = np.zeros(n, dtype=bool)
    for value in arrays.values():
        a = np.asarray(value)
        if a.dtype.kind == "f":
            bad |= ~np.isfinite(a.reshape(n, -1)).all(axis=1)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        count = int(bad.sum())
        raise UserError(f"{source}: {count} row{'s' if count > 1 else ''} contain{'' if count > 1 else 's'} NaN or inf "
                        f"(first at row {first}); clean the data first")
