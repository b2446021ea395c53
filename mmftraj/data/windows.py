"""Windows of horizon H cut from episodes: the training examples of trajectory planners.

A window never crosses an episode boundary. Without padding, windows lie inside episodes
(episodes shorter than H give none). With `pad=True` a window may start at any step and run past
its episode's end: the remaining rows repeat the final row *at rest* (the `rest_columns`, e.g.
velocities and actions, set to 0). For goal-reaching data (maze2d's episodes end at the
controller's goal) this is "get there, then stay": every start is covered, near goals included,
instead of only the H-step stretches of long episodes.

Each window is a (H, obs_dim + act_dim) float32 array laid out as [observations | actions],
normalized per feature by one Normalizer fitted on all store rows. Conditioning targets are the
window's first and last *normalized* observations (start, goal).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import UserError
from .normalizers import Normalizer
from .store import EpisodeStore


@dataclass
class WindowBatch:
    """trajectories (B, H, obs_dim + act_dim); start, goal (B, obs_dim); index (B,) window ids."""

    trajectories: torch.Tensor
    start: torch.Tensor
    goal: torch.Tensor
    index: torch.Tensor


def _long(parts: list[np.ndarray]) -> torch.Tensor:
    """The concatenated int64 indices of `parts` (an empty tensor for none)."""
    return torch.from_numpy(np.concatenate(parts).astype(np.int64)) if parts else torch.zeros(0, dtype=torch.long)


class WindowDataset(torch.utils.data.Dataset):
    """All length-H windows of a store. Usable with a DataLoader or through `sample(B, generator)`."""

    def __init__(self, store: EpisodeStore, horizon: int, normalizer: Normalizer | str | None = "limits",
                 pad: bool = False, rest_columns: tuple[int, ...] = ()):
        if horizon < 1:
            raise UserError(f"horizon must be at least 1, got {horizon}")
        self.store = store
        self.horizon = int(horizon)
        self.pad = bool(pad)
        joined = np.concatenate([store.observations, store.actions], axis=1).astype(np.float32)
        if isinstance(normalizer, str):
            normalizer = Normalizer.fit(joined, normalizer)
        self.normalizer = normalizer
        data = normalizer.normalize(joined) if normalizer is not None else joined
        self.data = torch.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
        rest = np.zeros(joined.shape[1], dtype=np.float32)
        rest = normalizer.normalize(rest[None])[0] if normalizer is not None else rest
        self.rest_columns = torch.as_tensor(sorted(set(int(c) for c in rest_columns)), dtype=torch.long)
        self.rest_values = torch.as_tensor(np.asarray(rest, dtype=np.float32))[self.rest_columns]
        last = 1 if self.pad else self.horizon  # the last allowed start is this many rows before the end
        spans = [(s, e) for s, e in zip(store.starts, store.ends, strict=False) if e - s >= last]
        starts = [np.arange(s, e - last + 1) for s, e in spans]
        ends = [np.full(e - last + 1 - s, e) for s, e in spans]
        self.window_starts = _long(starts)
        self.episode_ends = _long(ends)
        if len(self.window_starts) == 0:
            longest = int(store.lengths.max()) if store.num_episodes else 0
            raise UserError(f"no episode is as long as the horizon {horizon} (longest has {longest} steps); "
                            "use a shorter horizon or longer episodes")
        self._offsets = torch.arange(self.horizon)

    @property
    def obs_dim(self) -> int:
        return self.store.obs_dim

    @property
    def act_dim(self) -> int:
        return self.store.act_dim

    @property
    def transition_dim(self) -> int:
        return self.obs_dim + self.act_dim

    def __len__(self) -> int:
        return len(self.window_starts)

    def keep(self, mask) -> None:
        """Drop the windows where the boolean `mask` (one entry per window) is False."""
        mask = torch.as_tensor(mask, dtype=torch.bool)
        self.window_starts, self.episode_ends = self.window_starts[mask], self.episode_ends[mask]

    def window_ends(self) -> torch.Tensor:
        """Per window, one past its last real (unpadded) store row."""
        return torch.minimum(self.window_starts + self.horizon, self.episode_ends)

    def windows(self, index: torch.Tensor) -> torch.Tensor:
        rows = self.window_starts[index][:, None] + self._offsets
        if not self.pad:
            return self.data[rows]
        last = self.episode_ends[index][:, None] - 1
        past = rows > last
        out = self.data[torch.minimum(rows, last)]
        if len(self.rest_columns):
            cols = out[..., self.rest_columns]
            out[..., self.rest_columns] = torch.where(past[..., None], self.rest_values, cols)
        return out

    def batch(self, index: torch.Tensor) -> WindowBatch:
        traj = self.windows(index)
        obs = traj[..., : self.obs_dim]
        return WindowBatch(traj, obs[:, 0].clone(), obs[:, -1].clone(), index)

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> WindowBatch:
        """B windows drawn uniformly with replacement (reproducible given the generator)."""
        index = torch.randint(len(self), (batch_size,), generator=generator)
        return self.batch(index)

    def __getitem__(self, i: int):
        """(trajectory (H, D), start (obs_dim,), goal (obs_dim,)) for DataLoader use."""
        b = self.batch(torch.tensor([i]))
        return b.trajectories[0], b.start[0], b.goal[0]

    def split(self, trajectories):
        """(observations, actions) views of (..., H, obs_dim + act_dim) trajectories."""
        return trajectories[..., : self.obs_dim], trajectories[..., self.obs_dim :]

    def unnormalize(self, trajectories):
        return self.normalizer.unnormalize(trajectories) if self.normalizer is not None else trajectories

    def obs_normalizer(self) -> Normalizer:
        """The normalizer of the observation columns alone (what a planner applies to a live
        observation and goal)."""
        n = self.normalizer
        return Normalizer(n.kind, n.shift[: self.obs_dim], n.scale[: self.obs_dim])

    def normalize_obs(self, obs):
        """Normalize raw observations (..., obs_dim), e.g. a start and goal for conditioning."""
        return obs if self.normalizer is None else self.obs_normalizer().normalize(obs)
