"""Generalization splits as data (envs/splits/*.yaml) and their training side, applied in memory.

A split says what the model must not see in training and how it is then tested (the evaluation
conditions live in `mmftraj.planning.conditions`). Kinds:

  goal      windows whose goal (last position) lies in one of `cells` are removed from training
  start     windows whose start (first position) lies in one of `cells` are removed
  dynamics  nothing is removed; evaluation changes damping / gear / action noise (`shifts`)
  layout    nothing is removed; evaluation runs on another maze (`eval_env`, its own ref. scores)
  column    episodes whose metadata `column` takes one of `values` are removed (tabular data)

Why goal/start act on windows, not episodes: a planner is conditioned on a window's first and
last observation, so "never trained towards a goal in these cells" is a statement about windows;
an expert episode aimed elsewhere still passes through the held-out cells and would leak them.

Low-data subsets are nested by construction: one seeded permutation of the episodes, of which a
fraction f keeps the first ceil(f·E), so a 5% subset contains the 1% one. Nothing is copied to disk.

    split = load_split("umaze-goal")                       # built-in name or a YAML path
    windows = prepare_windows(store, 128, "limits", split, fraction=0.1, subset_seed=0, layout=load_layout("umaze"))
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from ..config import from_dict, load_yaml
from ..data import WindowDataset
from ..envs import SPECS
from ..envs.layouts import Layout, as_layout, cells_of
from ..errors import UserError, choice_error
from ..resources import resource_path

KINDS = ("goal", "start", "dynamics", "layout", "anywhere", "column")
TRAIN_KINDS = ("goal", "start", "column")  # kinds that change the training data
NOMINAL = {"damping": 1.0, "gear": 100.0, "action_noise": 0.0}  # d4rl's maze2d values


@dataclass
class Shift:
    """One shifted evaluation condition. Each parameter is [value] or a range [lo, hi] drawn
    uniformly per episode; left out, it keeps d4rl's value (damping 1, gear 100, no noise).
    `action_noise` is the std of Gaussian noise added to every action before the env clips it."""

    name: str
    damping: list[float] | None = None
    gear: list[float] | None = None
    action_noise: list[float] | None = None


@dataclass
class Split:
    name: str
    kind: Literal["goal", "start", "dynamics", "layout", "anywhere", "column"]
    description: str = ""
    layout: str | None = None  # maze splits: the training layout the cells refer to
    cells: list[list[int]] = field(default_factory=list)  # goal/start: held-out (row, col) cells
    shifts: list[Shift] = field(default_factory=list)  # dynamics
    eval_env: str | None = None  # layout: e.g. maze2d-eval-umaze-v1
    column: str | None = None  # column: episode metadata column
    values: list[str] = field(default_factory=list)  # column: held-out values (compared as strings)

    @property
    def changes_training(self) -> bool:
        return self.kind in TRAIN_KINDS

    @property
    def held_out_cells(self) -> set[tuple[int, int]]:
        return {(int(i), int(j)) for i, j in self.cells}


# -- loading ---------------------------------------------------------------------------------------
def splits_dir() -> Path:
    return resource_path("envs", "splits")


def builtin_splits() -> list[str]:
    return sorted(p.stem for p in splits_dir().glob("*.yaml"))


def load_split(name_or_path: str | Path | Split) -> Split:
    """A built-in split by name (envs/splits/<name>.yaml) or a YAML file; strict schema."""

    if isinstance(name_or_path, Split):
        return name_or_path
    key = str(name_or_path)
    path = splits_dir() / f"{key}.yaml"
    if not path.is_file():
        if not key.endswith((".yaml", ".yml")):
            raise choice_error("split", key, builtin_splits())
        path = Path(key)
        if not path.is_file():
            raise UserError(f"split file not found: {path}")
    data = load_yaml(path)
    data.setdefault("name", path.stem)
    if "kind" not in data:
        raise UserError(f"split {path}: missing 'kind' (one of {', '.join(KINDS)})")
    split = from_dict(Split, data, prefix=f"split {path.name}: ")
    validate_split(split)
    return split


def validate_split(split: Split) -> None:
    """Check a split against its kind (and maze cells against the layout); UserError otherwise."""
    where = f"split {split.name!r}"
    if split.kind in ("goal", "start"):
        if not split.cells:
            raise UserError(f"{where}: a {split.kind} split needs 'cells' (held-out [row, col] cells)")
        if split.layout is None:
            raise UserError(f"{where}: a {split.kind} split needs 'layout' (the maze its cells refer to)")
        layout = as_layout(split.layout)
        for cell in split.cells:
            if len(cell) != 2:
                raise UserError(f"{where}: cell {cell} must be [row, col]")
            if not layout.in_bounds(tuple(cell)) or layout.walls[tuple(cell)]:
                raise UserError(f"{where}: cell {cell} is not a free cell of layout {split.layout!r}")
        if len(split.held_out_cells) >= len(layout.free_cells):
            raise UserError(f"{where}: holds out every free cell of {split.layout!r}; no training data would remain")
    elif split.kind == "dynamics":
        if not split.shifts:
            raise UserError(f"{where}: a dynamics split needs 'shifts' (damping / gear / action_noise)")
        for shift in split.shifts:
            for key in ("damping", "gear", "action_noise"):
                value = getattr(shift, key)
                if value is None:
                    continue
                if len(value) not in (1, 2) or (len(value) == 2 and value[0] > value[1]):
                    raise UserError(f"{where}: shift {shift.name!r}: {key} must be [value] or [lo, hi] with lo <= hi")
                if min(value) < 0 or (key != "action_noise" and min(value) <= 0):
                    raise UserError(f"{where}: shift {shift.name!r}: {key} must be positive, got {value}")
    elif split.kind == "anywhere":
        if split.layout is None:
            raise UserError(f"{where}: an anywhere split needs 'layout' (the maze whose free cells are goals)")
        as_layout(split.layout)
    elif split.kind == "layout":
        if split.eval_env not in SPECS:
            raise choice_error(f"eval_env of {where}", str(split.eval_env), SPECS)
    elif split.kind == "column":
        if not split.column or not split.values:
            raise UserError(f"{where}: a column split needs 'column' and 'values' (the held-out values)")


# -- episodes ----------------------------------------------------------------------------------------
def subset_indices(num_episodes: int, fraction: float, seed: int) -> np.ndarray:
    """Sorted indices of the nested low-data subset: the first ceil(fraction·E) of one seeded
    permutation of the episodes (so subsets of one seed are nested as the fraction grows)."""
    check_fraction(fraction)
    if num_episodes < 1:
        raise UserError("the dataset has no episodes")
    order = np.random.default_rng(np.random.SeedSequence([int(seed), 0x5EED])).permutation(num_episodes)
    n = max(1, math.ceil(fraction * num_episodes - 1e-9))
    return np.sort(order[:n])


def check_fraction(fraction: float) -> None:
    if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not (0 < fraction <= 1):
        raise UserError(f"data fraction must be in (0, 1], got {fraction!r}")


def subset_episodes(store, fraction: float, seed: int = 0):
    """The nested low-data subset of `store` (see subset_indices); fraction 1 returns the store."""
    check_fraction(fraction)
    if fraction == 1:
        return store
    out = store.take(subset_indices(store.num_episodes, fraction, seed))
    out.meta.update(fraction=float(fraction), subset_seed=int(seed))
    return out


def column_values(store, column: str) -> np.ndarray:
    """One value per episode (as str): episode metadata first, else the column's first row."""
    if all(column in m for m in store.episode_meta) and store.num_episodes:
        return np.array([str(m[column]) for m in store.episode_meta])
    if column in store.extras:
        return np.array([str(v) for v in np.asarray(store.extras[column])[store.starts]])
    have = sorted(set().union(*[set(m) for m in store.episode_meta]) | set(store.extras))
    raise UserError(f"split column {column!r} is not in the dataset; episode columns: {', '.join(have) or 'none'}")


def apply_split(store, split: Split | str | None):
    """Episode-level part of a split: a column split drops the held-out episodes; other kinds
    return the store unchanged (goal/start act on windows, see `window_mask`)."""
    if split is None:
        return store
    split = load_split(split)
    if split.kind != "column":
        return store
    held = np.isin(column_values(store, split.column), [str(v) for v in split.values])
    if held.all():
        raise UserError(f"split {split.name!r} holds out every episode ({split.column} in {split.values}); "
                        "no training data would remain")
    out = store.take(np.flatnonzero(~held))
    out.meta["split"] = split.name
    return out


def heldout_store(store, split: Split | str):
    """The episodes a column split holds out (its out-of-distribution evaluation set)."""
    split = load_split(split)
    if split.kind != "column":
        raise UserError(f"split {split.name!r} is a {split.kind} split; only column splits hold out episodes")
    held = np.isin(column_values(store, split.column), [str(v) for v in split.values])
    if not held.any():
        raise UserError(f"split {split.name!r}: no episode has {split.column} in {split.values}")
    return store.take(np.flatnonzero(held))


# -- windows -------------------------------------------------------------------------------------------
def in_cells(xy: np.ndarray, cells) -> np.ndarray:
    """Boolean per position: does it lie in one of `cells`?"""
    c = cells_of(xy)
    hit = np.zeros(c.shape[:-1], dtype=bool)
    for i, j in cells:
        hit |= (c[..., 0] == i) & (c[..., 1] == j)
    return hit


def window_mask(windows, split: Split | str | None, goal_from: int | None = None) -> np.ndarray:
    """Boolean per window of a WindowDataset: True where the split keeps it for training.

    A goal split looks at the window's last position, or, for models trained with the goal at any
    step from `goal_from` on, at every position from that step: any of them could be a goal."""
    keep = np.ones(len(windows), dtype=bool)
    if split is None:
        return keep
    split = load_split(split)
    if split.kind not in ("goal", "start"):
        return keep
    starts = windows.window_starts.numpy()
    held = in_cells(windows.store.observations[:, :2], split.held_out_cells)
    if split.kind == "start":
        return ~held[starts]
    first = windows.horizon - 1 if goal_from is None else int(goal_from)
    if not 0 <= first < windows.horizon:
        raise UserError(f"goal_from must be in [0, {windows.horizon - 1}], got {goal_from}")
    count = np.concatenate([[0], np.cumsum(held)])  # held-out rows before each row
    ends = windows.window_ends().numpy()  # padded windows hold their last real row to the end
    return count[ends] - count[np.minimum(starts + first, ends - 1)] == 0


def prepare_windows(store, horizon: int, normalizer="limits", split: Split | str | None = None,
                    fraction: float = 1.0, subset_seed: int = 0, layout: Layout | None = None,
                    goal_from: int | None = None, pad: bool = False, rest_columns: tuple[int, ...] = ()):
    """Training windows after the low-data subset (episodes) and the split (episodes, then
    windows); the normalizer is fitted on what remains, as a user with only that data would.
    `layout` is the training maze, loaded once by the caller (a maze split defined on another layout
    is a UserError);
    `goal_from` as in `window_mask`; `pad`, `rest_columns` as in WindowDataset."""

    split = load_split(split) if split is not None else None
    store = subset_episodes(store, fraction, subset_seed)
    if split is not None and split.layout is not None and split.kind in ("goal", "start") and layout is not None:
        if layout.name != split.layout:
            raise UserError(f"split {split.name!r} is defined on layout {split.layout!r} "
                            f"but the task trains on {layout.name!r}")
    store = apply_split(store, split)
    windows = WindowDataset(store, horizon, normalizer=normalizer, pad=pad, rest_columns=rest_columns)
    keep = window_mask(windows, split, goal_from)
    if not keep.any():
        raise UserError(f"split {split.name!r} leaves no training windows (all {len(keep)} windows "
                        f"{'end' if split.kind == 'goal' else 'start'} in held-out cells)")
    if not keep.all():
        windows.keep(keep)
    return windows
