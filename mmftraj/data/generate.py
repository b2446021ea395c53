"""Generate maze2d datasets the way D4RL made `maze2d-*-v1`: one continuous expert run.

Recipe (D4RL's `generate_maze2d_datasets.py` + `relabel_maze2d_rewards.py`): a random target (free
cell + U(-0.1, 0.1)) and a random reset; the waypoint controller drives the particle; when it
reports the target solved, or after the env's episode length without success, the step is marked
in `timeouts` and a new random target is drawn *without* resetting the env. `rewards` are the sparse
reward of each recorded observation against the layout's fixed evaluation goal; `terminals` are
all False. One deliberate difference: D4RL recorded the stale pre-step observation once after every
goal change; we record the true state (infos/qpos and infos/qvel always were).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import mujoco
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

from ..envs.controller import WaypointController
from ..envs.maze2d import REWARD_RADIUS, SPECS, VEL_CLIP, make_maze2d, random_free_point
from ..errors import UserError, choice_error
from ..io import atomic_path, atomic_write_text

DEFAULT_SAMPLES = {"maze2d-umaze-v1": 1_000_000, "maze2d-medium-v1": 2_000_000, "maze2d-large-v1": 4_000_000}
RECIPE_VERSION = 1


def default_path(env_name: str) -> Path:
    return Path("datasets") / "maze2d" / f"{env_name}.hdf5"


def generate_command(env_name: str) -> str:
    """The command line that makes the default dataset for `env_name` (for error messages)."""
    return f"mmftraj data generate {env_name}"


@dataclass
class GenerateResult:
    path: Path
    manifest_path: Path
    manifest: dict
    seconds: float

    @property
    def steps_per_second(self) -> float:
        return self.manifest["counts"]["steps"] / max(self.seconds, 1e-9)


def rollout_arrays(env_name: str, samples: int, seed: int, progress=None) -> dict[str, np.ndarray]:
    """Run the continuous expert and return the D4RL-format arrays (in memory)."""
    key = env_name.split("/")[-1]
    if key not in SPECS:
        raise choice_error("maze2d env", env_name, SPECS)
    if samples < 1:
        raise UserError(f"--samples must be at least 1, got {samples}")
    env = make_maze2d(key)
    max_steps = SPECS[key].max_episode_steps
    env_seq, ctrl_seq = np.random.SeedSequence(seed).spawn(2)
    rng = np.random.default_rng(env_seq)
    controller = WaypointController(env.layout, rng=np.random.default_rng(ctrl_seq))

    def random_target():
        return random_free_point(env.layout, rng)

    gx, gy = random_target().tolist()
    env.reset(seed=int(rng.integers(2**31)))
    model, data = env.model, env.data
    qpos, qvel, ctrl = data.qpos, data.qvel, data.ctrl
    buf = np.empty((samples, 8), dtype=np.float32)  # x, y, vx, vy, ax, ay, goal_x, goal_y
    timeouts = np.zeros(samples, dtype=bool)
    ts = 0
    report = max(samples // 200, 1000)
    for t in range(samples):
        x, y = qpos.tolist()
        vx, vy = qvel.tolist()
        ax, ay, done = controller.get_action(x, y, vx, vy, gx, gy)
        if ts >= max_steps:
            done = True
        buf[t] = (x, y, vx, vy, ax, ay, gx, gy)
        timeouts[t] = done
        # env.step, inlined: velocity clip + forward (mujoco-py set_state), then one mj_step
        if abs(vx) > VEL_CLIP or abs(vy) > VEL_CLIP:
            np.clip(qvel, -VEL_CLIP, VEL_CLIP, out=qvel)
        mujoco.mj_forward(model, data)
        ctrl[0] = ax
        ctrl[1] = ay
        mujoco.mj_step(model, data)
        ts += 1
        if done:
            gx, gy = random_target().tolist()
            ts = 0
        if progress is not None and (t + 1) % report == 0:
            progress(report)
    if progress is not None:
        progress(samples % report)
    obs = np.ascontiguousarray(buf[:, :4])
    goal = env.default_goal.astype(np.float32)
    rewards = (np.linalg.norm(obs[:, :2] - goal, axis=1) <= REWARD_RADIUS).astype(np.float32)
    return {
        "observations": obs,
        "actions": np.ascontiguousarray(buf[:, 4:6]),
        "rewards": rewards,
        "terminals": np.zeros(samples, dtype=bool),
        "timeouts": timeouts,
        "infos/goal": np.ascontiguousarray(buf[:, 6:8]),
        "infos/qpos": np.ascontiguousarray(buf[:, 0:2]),
        "infos/qvel": np.ascontiguousarray(buf[:, 2:4]),
    }


def write_d4rl_hdf5(path: str | Path, arrays: dict[str, np.ndarray], attrs: dict | None = None) -> None:
    """Write D4RL-format arrays atomically and byte-reproducibly (gzip, no timestamps)."""
    with atomic_path(path, suffix=".hdf5") as tmp:
        with h5py.File(tmp, "w", libver="earliest", track_order=False) as f:
            for key in sorted(arrays):
                f.create_dataset(key, data=arrays[key], compression="gzip", compression_opts=4,
                                 chunks=True if arrays[key].ndim else None, track_times=False)
            for k, v in sorted((attrs or {}).items()):
                f.attrs[k] = v
        os.chmod(tmp, 0o644)  # a normal data file, not the private mode of a temp file


def sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def dataset_stats(arrays: dict[str, np.ndarray]) -> dict:
    """Steps, episodes (split at goal changes), goal changes and reward rate of a maze2d stream."""
    n = len(arrays["observations"])
    goal = arrays.get("infos/goal")
    changes = int(np.any(goal[1:] != goal[:-1], axis=1).sum()) if goal is not None else int(arrays["timeouts"].sum())
    return {
        "steps": n,
        "episodes": changes + 1,
        "goal_changes": changes,
        "timeouts": int(np.asarray(arrays["timeouts"]).sum()),
        "reward_rate": float(np.asarray(arrays["rewards"], dtype=np.float64).mean()),
    }


def _on_terminal() -> bool:
    return Console().is_terminal


def generate(env_name: str, samples: int | None = None, seed: int = 0, out: str | Path | None = None,
             show_progress: bool = True) -> GenerateResult:
    """Generate a dataset file plus `<name>.json` manifest; both appear only when complete."""
    key = env_name.split("/")[-1]
    if key not in DEFAULT_SAMPLES and key not in SPECS:
        raise choice_error("maze2d env", env_name, SPECS)
    samples = int(samples if samples is not None else DEFAULT_SAMPLES.get(key, 1_000_000))
    path = Path(out) if out is not None else default_path(key)
    if path.exists() and path.is_dir():
        raise UserError(f"--out {path} is a directory; give a file path such as {path / (key + '.hdf5')}")
    start = time.perf_counter()
    if show_progress and _on_terminal():
        with Progress("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), transient=True) as bar:
            task = bar.add_task(f"{key} (seed {seed})", total=samples)
            arrays = rollout_arrays(key, samples, seed, progress=lambda k: bar.advance(task, k))
    else:
        if show_progress:  # piped or logged: one line instead of a bar rich would leave blank
            print(f"generating {key}: {samples} steps (seed {seed}) ...", flush=True)
        arrays = rollout_arrays(key, samples, seed)
    recipe = {"generator": "mmftraj.data.generate", "version": RECIPE_VERSION, "env": key,
              "layout": SPECS[key].layout, "max_episode_steps": SPECS[key].max_episode_steps,
              "controller": "d4rl waypoint (q-iteration, p_gain 10, d_gain -1, jitter 0.2)"}
    write_d4rl_hdf5(path, arrays, attrs={"env": key, "seed": seed, "recipe_version": RECIPE_VERSION})
    seconds = time.perf_counter() - start
    manifest = {"recipe": recipe, "seed": seed, "samples": samples, "file": path.name,
                "counts": dataset_stats(arrays), "sha256": sha256(path)}
    manifest_path = path.with_suffix(".json")
    atomic_write_text(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    os.chmod(manifest_path, 0o644)
    return GenerateResult(path, manifest_path, manifest, seconds)
