"""Trajectory tables (CSV or Parquet, e.g. motion capture) into the episode store, via pandas.

Column mapping (all names configurable):
  episode  one id per trajectory (episodes are ordered by sorted id, so row order does not matter)
  time     sort key inside an episode (steps or seconds; rows are sorted by it)
  state    the observation columns, in the order given (default: every column starting with "s_"
           or "obs_")
  action   the action columns (default: every column starting with "a_" or "act_"; may be none,
           then actions have width 0)
Any other column is kept as an extra under its own name when listed in `extras`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import UserError
from .store import EpisodeStore

STATE_PREFIXES = ("s_", "obs_")
MIN_EPISODE_STEPS = 2  # a one-row episode has no motion to learn
MAX_TABLE_BYTES = 2 * 1024**3  # a larger CSV is refused before pandas reads it into memory
ACTION_PREFIXES = ("a_", "act_")


def _read(path: Path):
    if not path.is_file():
        raise UserError(f"table not found: {path}")
    suffix = path.suffix.lower()
    size = path.stat().st_size
    if suffix == ".csv" and size > MAX_TABLE_BYTES:
        raise UserError(f"{path} is {size / 1024**3:.1f} GB; CSV tables above {MAX_TABLE_BYTES / 1024**3:.0f} GB "
                        "are not read into memory: convert it to Parquet (columnar, about 5x smaller) or split it")
    try:
        if suffix == ".csv":
            return pd.read_csv(path)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(path)
    except ImportError as exc:
        raise UserError(f"{path}: reading Parquet needs pyarrow ({exc}); pip install pyarrow") from None
    except (ValueError, OSError) as exc:
        raise UserError(f"{path}: cannot read table ({exc})") from None
    raise UserError(f"{path}: unknown table format {suffix!r}; use .csv or .parquet")


def load_table(path: str | Path, episode: str = "episode", time: str = "t", state: list[str] | None = None,
               action: list[str] | None = None, extras: list[str] = ()) -> EpisodeStore:
    """Load a CSV/Parquet trajectory table into an EpisodeStore (see module docstring)."""
    path = Path(path)
    return store_from_frame(_read(path), str(path), episode, time, state, action, extras)


def store_from_frame(df, source: str, episode: str = "episode", time: str = "t", state: list[str] | None = None,
                     action: list[str] | None = None, extras: list[str] = ()) -> EpisodeStore:
    """A pandas DataFrame laid out as a trajectory table (see module docstring) → EpisodeStore."""
    cols = list(df.columns)
    state = list(state) if state else [c for c in cols if str(c).startswith(STATE_PREFIXES)]
    action = list(action) if action is not None else [c for c in cols if str(c).startswith(ACTION_PREFIXES)]
    if not state:
        raise UserError(f"{source}: no state columns: name them s_* / obs_*, or list them (state=[...]; on the "
                        f"command line --set 'data.state=[a,b]'); columns: {', '.join(map(str, cols))}")
    for name in [episode, time, *state, *action, *extras]:
        if name not in df.columns:
            raise UserError(f"{source}: missing column '{name}' (name the columns with data.episode, data.time, "
                            f"data.state, data.action); columns are: {', '.join(map(str, cols))}")
    numeric = df[state + action + list(extras)]
    try:
        values = numeric.to_numpy(dtype=np.float64)
    except (ValueError, TypeError):
        raise UserError(f"{source}: state/action columns must be numeric") from None
    if len(df) == 0:
        raise UserError(f"{source}: the table has a header but no rows")
    bad = ~np.isfinite(values).all(axis=1) | df[episode].isna().to_numpy() | df[time].isna().to_numpy()
    if bad.any():
        count = int(bad.sum())
        raise UserError(f"{source}: {count} row{'s' if count > 1 else ''} with a missing or infinite value "
                        f"(first at table row {int(np.flatnonzero(bad)[0])}); clean the data first")
    times = pd.to_numeric(df[time], errors="coerce")
    if times.isna().any():
        row = int(np.flatnonzero(times.isna().to_numpy())[0])
        raise UserError(f"{source}: time column '{time}' must be numeric; table row {row} holds "
                        f"{df[time].iloc[row]!r} (data.time names the column)")
    df = df.assign(**{time: times})
    ids = set(df[episode].tolist())
    try:
        ids = sorted(ids)
    except TypeError:  # ids of mixed types (numbers and text): order them as text
        ids = sorted(ids, key=str)
    order = {k: i for i, k in enumerate(ids)}
    df = df.assign(_ep=df[episode].map(order)).sort_values(["_ep", time], kind="stable")
    ep = df["_ep"].to_numpy()
    ends_after = np.append(ep[1:] != ep[:-1], True)
    t = df[time].to_numpy()
    repeated = (ep[1:] == ep[:-1]) & (t[1:] <= t[:-1])
    if repeated.any():
        k = int(np.flatnonzero(repeated)[0])
        raise UserError(f"{source}: episode {ids[ep[k]]!r} has the time {t[k + 1].item()} twice; times must strictly "
                        "increase within an episode (drop or merge the duplicate rows)")
    lengths = np.diff(np.flatnonzero(np.append(True, ends_after)))
    if (lengths < MIN_EPISODE_STEPS).any():
        short = int((lengths < MIN_EPISODE_STEPS).sum())
        raise UserError(f"{source}: {short} episode{'s' if short > 1 else ''} of a single row; an episode needs at "
                        f"least {MIN_EPISODE_STEPS} steps (a trajectory), so drop them or check data.episode")
    obs = df[state].to_numpy(dtype=np.float32)
    act = df[action].to_numpy(dtype=np.float32) if action else np.zeros((len(df), 0), np.float32)
    extra = {name: df[name].to_numpy() for name in extras}
    extra["time"] = df[time].to_numpy()
    return EpisodeStore.from_arrays(obs, act, ends_after, extra, source=source,
                                    meta={"format": "table", "state": state, "action": action},
                                    episode_meta=[{"episode": k} for k in ids])
