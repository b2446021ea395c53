"""The motion task's data: a trajectory table (the user's CSV/Parquet, or the synthetic gait table),
its held-out episodes, what a speed band and a low-data share take from training, and the H-step
windows of both sides.

    d = DataConfig(horizon=64)                      # the task's `data` section
    train, test = load_windows(d)                   # WindowDatasets; test uses train's normalizer
    train.store.meta["left_out"]                    # episodes the speed band / data.fraction removed
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..errors import UserError
from .gait import gait_table
from .speed import in_band, planar_speed, quarter_chord, time_step
from .splits import check_fraction, subset_indices
from .tables import load_table, store_from_frame
from .windows import WindowDataset


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


def load_store(d: DataConfig):
    """The whole table as an EpisodeStore: the user's file, or the synthetic gait table."""

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


def load_windows(d: DataConfig, normalizer=None) -> tuple[WindowDataset, WindowDataset]:
    """(train windows, held-out windows): the normalizer is fitted on the training episodes only,
    or given (a checkpoint's)."""

    h = d.horizon
    store = load_store(d)
    train_idx, test_idx = split_episodes(store.num_episodes, d.test_fraction, d.split_seed)
    train_idx, left_out = training_episodes(store, train_idx, d)
    parts = []
    for name, index in (("training", train_idx), ("held-out", test_idx)):
        part = store.take(index)
        if (part.lengths < h).all():
            other = ", another data.split_seed or a larger data.test_fraction" if name == "held-out" else ""
            raise UserError(f"no {name} episode is as long as data.horizon {h} (the longest has "
                            f"{int(part.lengths.max())} steps); use a shorter data.horizon{other}")
        parts.append(part)
    parts[0].meta["left_out"] = left_out  # what data.hold_out_speed / data.fraction took from training
    train = WindowDataset(parts[0], h, normalizer or d.normalizer)
    test = WindowDataset(parts[1], h, train.normalizer)
    return train, test


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


def short_episodes(windows: WindowDataset, horizon: int) -> int:
    """How many of the windows' episodes are shorter than `horizon` (they give no windows)."""
    return int((windows.store.lengths < horizon).sum())
