"""D4RL HDF5 files (ours and the original downloads) to and from the episode store.

Episode splitting for maze2d follows the stream's goal: a new episode starts where `infos/goal`
changes (equivalently where our `timeouts` are set). Other D4RL files split at timeouts/terminals.
"""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import numpy as np

from ..errors import UserError, choice_error
from .generate import DEFAULT_SAMPLES, generate_command, write_d4rl_hdf5
from .store import EpisodeStore, check_arrays

REQUIRED = ("observations", "actions", "rewards", "terminals", "timeouts")
SPLITS = ("auto", "goal", "timeouts", "none")


def _missing_message(path: Path) -> str:
    name = path.stem
    if name in DEFAULT_SAMPLES:
        return f"dataset not found: {path}; make it with: {generate_command(name)} --out {path}"
    return (f"dataset not found: {path}; make a maze2d one with e.g. "
            f"`mmftraj data generate maze2d-umaze-v1 --out {path}` or give the path of a D4RL .hdf5 file")


def read_d4rl_arrays(path: str | Path) -> dict[str, np.ndarray]:
    """Every dataset in the file (nested keys as 'infos/goal'), after checks on keys and lengths."""
    path = Path(path)
    if not path.is_file():
        raise UserError(_missing_message(path))
    arrays: dict[str, np.ndarray] = {}
    try:
        with h5py.File(path, "r") as f:
            datasets = {}

            def visit(name, item):  # returns None: a value would end the visit
                if isinstance(item, h5py.Dataset) and not name.startswith("metadata"):
                    datasets[name] = item

            f.visititems(visit)
            check_datasets(datasets, path)
            arrays = {name: item[()] for name, item in datasets.items()}
    except OSError as exc:
        raise UserError(f"{path}: not a readable HDF5 file ({exc})") from None
    for key in REQUIRED:
        if key not in arrays:
            raise UserError(f"{path}: missing key '{key}' (a D4RL file has {', '.join(REQUIRED)})")
    check_arrays(arrays, str(path))
    return arrays


def check_datasets(datasets: dict, path: Path) -> None:
    """Refuse, before reading a byte, datasets stored outside the file (external storage or a
    virtual layout would read whatever files they name), of non-numeric types, or declaring more
    data than half this machine's memory (a chunked dataset can declare (1e10, 4) in a few KB)."""
    for name, item in datasets.items():
        if item.external or item.is_virtual:
            raise UserError(f"{path}: dataset '{name}' keeps its data outside the file ("
                            f"{'external storage' if item.external else 'a virtual layout'}); mmftraj reads only "
                            "data stored in the HDF5 file itself")
        if item.dtype.kind not in "biuf":
            raise UserError(f"{path}: dataset '{name}' holds {item.dtype} values, not numbers")
    declared = sum(item.size * item.dtype.itemsize for item in datasets.values())
    if declared > memory_bytes() // 2:
        raise UserError(f"{path}: its datasets declare {declared / 1e9:,.1f} GB, more than half this machine's "
                        f"memory ({memory_bytes() / 1e9:,.1f} GB); not a dataset mmftraj can load")


def memory_bytes() -> int:
    """This machine's physical memory (a generous 64 GB where the OS does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 64 << 30


def episode_ends(arrays: dict[str, np.ndarray], split: str = "auto") -> np.ndarray:
    """Boolean per step: an episode ends after this step."""
    n = len(arrays["observations"])
    if split not in SPLITS:
        raise choice_error("episode split", split, SPLITS)
    if split == "auto":
        split = "goal" if "infos/goal" in arrays else "timeouts"
    ends = np.zeros(n, dtype=bool)
    if split == "goal":
        goal = np.asarray(arrays["infos/goal"]).reshape(n, -1)
        ends[:-1] = np.any(goal[1:] != goal[:-1], axis=1)
    elif split == "timeouts":
        ends = np.asarray(arrays["timeouts"], dtype=bool) | np.asarray(arrays["terminals"], dtype=bool)
    ends[-1] = True
    return ends


def load_d4rl(path: str | Path, split: str = "auto") -> EpisodeStore:
    """Load a D4RL HDF5 file into an EpisodeStore (split: auto | goal | timeouts | none)."""
    arrays = read_d4rl_arrays(path)
    extras = {k: v for k, v in arrays.items() if k not in ("observations", "actions")}
    ends = episode_ends(arrays, split)
    store = EpisodeStore.from_arrays(arrays["observations"], arrays["actions"], ends, extras,
                                     source=str(path), meta={"format": "d4rl", "split": split})
    return store


def save_d4rl(store: EpisodeStore, path: str | Path) -> None:
    """Write the store as a D4RL file (observations, actions and every extra, original dtypes).

    Missing D4RL keys are filled: zero rewards/terminals, timeouts at episode ends.
    """

    arrays = {"observations": store.observations, "actions": store.actions, **store.extras}
    n = len(store)
    arrays.setdefault("rewards", np.zeros(n, dtype=np.float32))
    arrays.setdefault("terminals", np.zeros(n, dtype=bool))
    if "timeouts" not in arrays:
        timeouts = np.zeros(n, dtype=bool)
        timeouts[store.ends - 1] = True
        arrays["timeouts"] = timeouts
    write_d4rl_hdf5(path, arrays)
