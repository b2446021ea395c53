"""Load a CSV/Parquet trajectory table (e.g. motion capture) and cut training windows from it.

Run: python examples/load_motion_table.py
The table has one row per time step: episode id, time, state columns (s_*), action columns (a_*).
"""

from pathlib import Path

import torch

from mmftraj.data import WindowDataset
from mmftraj.data.tables import load_table

table = Path(__file__).with_name("motion_table.csv")
store = load_table(table, episode="episode", time="t", state=["s_x", "s_y"], action=["a_vx", "a_vy"])
print(store.summary())
windows = WindowDataset(store, horizon=8, normalizer="gaussian")
batch = windows.sample(4, generator=torch.Generator().manual_seed(0))
print("windows:", len(windows), "batch:", tuple(batch.trajectories.shape), "start:", tuple(batch.start.shape))
