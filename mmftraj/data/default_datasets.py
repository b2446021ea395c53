"""The default dataset of each maze env, generated on first use: `datasets/maze2d/<env>.hdf5` (D4RL's
recipe, mmftraj.data.generate) or the Minari dataset `datasets/pointmaze/<id>/` (Minari's recipe,
mmftraj.data.pointmaze), relative to where mmftraj runs. Nothing is downloaded."""

from __future__ import annotations

from pathlib import Path

from ..envs.pointmaze import POINTMAZE
from .generate import default_path, generate
from .pointmaze import DATASET_IDS, dataset_dir, generate_pointmaze
from .pointmaze import default_root as pointmaze_root


def default_dataset(env: str, progress: bool = True) -> Path:
    """The default dataset of `env` (a maze2d-* or PointMaze_* id): a D4RL HDF5 file or a Minari
    dataset folder. A missing one is generated first, after one line saying so (as `mmftraj data
    generate <env>` would; one-time, minutes), with a progress bar when `progress`."""
    if env not in POINTMAZE:
        path = default_path(env)
        if not path.exists():
            print(f"dataset {path.resolve()} not found: generating it now (one-time, d4rl recipe; "
                  f"same as `mmftraj data generate {env}`)", flush=True)
            generate(env, out=path, show_progress=progress)
        return path
    path = dataset_dir(pointmaze_root(), DATASET_IDS[env])
    if not path.exists():
        print(f"Minari dataset {path.resolve()} not found: generating it now (one-time, the recipe of Minari's "
              f"D4RL/pointmaze; same as `mmftraj data generate {env}`)", flush=True)
        generate_pointmaze(env, progress=progress)
    return path
