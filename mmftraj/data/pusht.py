"""Push-T demonstrations: Diffusion Policy's human teleoperation episodes, low-dimensional part.

The shipped file (`resources/data/pusht_cchi_v7_lowdim.npz`, 1.2 MB) holds the 206 episodes of
Diffusion Policy's `pusht_cchi_v7_replay.zarr` without the images: per step `state` (N, 5) =
agent x, y and block x, y, θ; `action` (N, 2) = the agent's PD target; `keypoint` (N, 9, 2) =
nine fixed points of the block; `n_contacts` (N, 1); and `episode_ends` (E,), exclusive ends.
Users bring their own recordings in the same zarr layout (`data/{state,action,keypoint}`,
`meta/episode_ends`); `load_demos` reads either, and `export_lowdim` writes the shipped form.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..io import atomic_path
from ..resources import resource_path

SHIPPED = ("data", "pusht_cchi_v7_lowdim.npz")
ARRAYS = {"state": (5,), "action": (2,), "keypoint": (9, 2)}  # per-step shapes every recording has
OPTIONAL = {"n_contacts": (1,)}


@dataclass
class PushTDemos:
    """Episodes laid end to end; episode k is rows [starts[k], ends[k])."""

    state: np.ndarray  # (N, 5) float32
    action: np.ndarray  # (N, 2) float32
    keypoint: np.ndarray  # (N, 9, 2) float32
    episode_ends: np.ndarray  # (E,) int64, strictly increasing, last == N
    n_contacts: np.ndarray | None = None  # (N, 1)

    @property
    def starts(self) -> np.ndarray:
        return np.r_[0, self.episode_ends[:-1]].astype(np.int64)

    @property
    def episodes(self) -> int:
        return len(self.episode_ends)

    def lengths(self) -> np.ndarray:
        return self.episode_ends - self.starts

    def episode(self, k: int) -> dict[str, np.ndarray]:
        a, b = int(self.starts[k]), int(self.episode_ends[k])
        return {"state": self.state[a:b], "action": self.action[a:b], "keypoint": self.keypoint[a:b]}


def shipped_path() -> Path:
    return resource_path(*SHIPPED)


def load_demos(path: str | Path | None = None) -> PushTDemos:
    """The shipped demonstrations (path None), an .npz in the shipped form, or a Diffusion Policy
    zarr store (a `.zarr` folder or a `.zarr.zip`); every problem is one UserError naming the fix."""
    path = shipped_path() if path is None else Path(path)
    if not path.exists():
        raise UserError(f"Push-T data not found: {path}; give a Diffusion Policy zarr store (data.path=DIR.zarr) "
                        "or drop data.path for the shipped demonstrations")
    if path.is_file() and path.suffix != ".npz" and not path.name.endswith(".zip"):
        raise UserError(f"{path} is a file but not a recording: give a .zarr folder, a .zarr.zip or an .npz")
    arrays = _read_npz(path) if path.suffix == ".npz" else _read_zarr(path)
    return _checked(arrays, path)


def _read_npz(path: Path) -> dict:
    if not zipfile.is_zipfile(path):
        raise UserError(f"{path} is not an .npz archive (not a zip file); re-export it with "
                        "mmftraj.data.pusht.export_lowdim")
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise UserError(f"{path} is not a readable .npz file ({exc}); re-export it with "
                        "mmftraj.data.pusht.export_lowdim") from None


def _read_zarr(path: Path) -> dict:
    try:
        import zarr
    except ImportError:
        raise UserError("reading a zarr store needs zarr<3: pip install 'mmftraj[pusht]'") from None
    try:
        store = zarr.ZipStore(str(path), mode="r") if path.suffix == ".zip" else str(path)
        root = zarr.open_group(store, mode="r")
        data, meta = root["data"], root["meta"]
        arrays = {k: data[k][:] for k in (*ARRAYS, *OPTIONAL) if k in data}
        arrays["episode_ends"] = meta["episode_ends"][:]
        return arrays
    except KeyError as exc:
        raise UserError(f"{path} is not in Diffusion Policy's layout: {exc} is missing (want data/state, "
                        "data/action, data/keypoint and meta/episode_ends)") from None
    except Exception as exc:  # zarr and its codecs raise many types for damaged stores
        if isinstance(exc, UserError):
            raise
        raise UserError(f"{path} is not a readable zarr store ({type(exc).__name__}: {exc}); "
                        "check the path or copy the store again") from None


def _checked(arrays: dict, path: Path) -> PushTDemos:
    missing = [k for k in (*ARRAYS, "episode_ends") if k not in arrays]
    if missing:
        raise UserError(f"{path} lacks {', '.join(missing)} (a Push-T recording has data/state (N, 5), data/action "
                        "(N, 2), data/keypoint (N, 9, 2) and meta/episode_ends)")
    n = len(arrays["state"])
    for key, tail in {**ARRAYS, **{k: v for k, v in OPTIONAL.items() if k in arrays}}.items():
        a = arrays[key]
        if a.ndim != 1 + len(tail) or a.shape[1:] != tail or len(a) != n:
            raise UserError(f"{path}: {key} has shape {a.shape}, expected ({n}, {', '.join(map(str, tail))})")
        if not np.issubdtype(a.dtype, np.number) or not np.isfinite(a).all():
            raise UserError(f"{path}: {key} holds non-numeric or non-finite values")
    ends = np.asarray(arrays["episode_ends"])
    if ends.ndim != 1 or len(ends) == 0 or not np.issubdtype(ends.dtype, np.integer):
        raise UserError(f"{path}: episode_ends must be a non-empty 1-D integer array, got {ends.dtype} {ends.shape}")
    if ends[0] < 1 or np.any(np.diff(ends) < 1) or ends[-1] != n:
        raise UserError(f"{path}: episode_ends must increase strictly and end at the {n} recorded steps "
                        f"(ends at {int(ends[-1])})")
    as32 = {k: np.ascontiguousarray(arrays[k], dtype=np.float32) for k in (*ARRAYS, *OPTIONAL) if k in arrays}
    return PushTDemos(as32["state"], as32["action"], as32["keypoint"], ends.astype(np.int64), as32.get("n_contacts"))


def export_lowdim(source: str | Path, out: str | Path) -> Path:
    """Write `source`'s low-dimensional arrays as a compressed .npz (how the shipped file was made:
    `export_lowdim("pusht_cchi_v7_replay.zarr", "pusht_cchi_v7_lowdim.npz")`)."""
    demos = load_demos(source)
    arrays = {"state": demos.state, "action": demos.action, "keypoint": demos.keypoint,
              "episode_ends": demos.episode_ends}
    if demos.n_contacts is not None:
        arrays["n_contacts"] = demos.n_contacts
    with atomic_path(out, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)
    return Path(out)


def split_episodes(episodes: int, train: int, val: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) episode indices: a seeded permutation, validation first, then training.

    Training sets of one seed are nested (a smaller one is a prefix of a larger), and validation
    episodes are never trained on, whatever `train` is."""
    if val < 0 or train < 1:
        raise UserError("data.train_episodes must be at least 1 and data.val_episodes 0 or more, "
                        f"got {train} and {val}")
    if train + val > episodes:
        raise UserError(f"data.train_episodes {train} + data.val_episodes {val} exceed the {episodes} episodes "
                        "of the recording; lower them with --set data.train_episodes=N")
    order = np.random.default_rng(seed).permutation(episodes)
    return np.sort(order[val : val + train]), np.sort(order[:val])
