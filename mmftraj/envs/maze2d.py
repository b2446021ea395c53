"""maze2d: d4rl's `maze2d-*-v1` point-mass maze, rebuilt on the modern `mujoco` package.

Why a port: d4rl needs gym<0.25 and mujoco-py; scores are only comparable with published ones if the
dynamics, reward, episode length and reset distribution are the same. Everything below reproduces
d4rl's `pointmaze/maze_model.py` (v1 registrations): the generated MJCF, action clip to [-1, 1],
qvel clip to +-5 (then mj_forward, as mujoco-py's set_state did) before each single mj_step
(frame_skip 1), observation (qpos, qvel), sparse reward ||xy - goal|| <= 0.5, never terminated.
"""

from __future__ import annotations

from dataclasses import dataclass

import gymnasium as gym
import mujoco
import numpy as np

from ..errors import UserError, choice_error
from .layouts import Layout, load_layout
from .pointmaze import POINTMAZE, PointMazeEnv

REWARD_RADIUS = 0.5
VEL_CLIP = 5.0
STATE = mujoco.mjtState.mjSTATE_INTEGRATION  # all a step depends on (time, qpos, qvel, warm start, ctrl, ...)


@dataclass(frozen=True)
class Spec:
    """Registration facts of one maze2d variant (d4rl's episode length and reference scores)."""

    layout: str
    max_episode_steps: int
    ref_min: float | None
    ref_max: float | None


SPECS: dict[str, Spec] = {
    "maze2d-open-v0": Spec("open", 150, 0.01, 20.66),
    "maze2d-umaze-v1": Spec("umaze", 300, 23.85, 161.86),
    "maze2d-medium-v1": Spec("medium", 600, 13.13, 277.39),
    "maze2d-large-v1": Spec("large", 800, 6.7, 273.99),
    "maze2d-eval-umaze-v1": Spec("eval-umaze", 300, 36.63, 141.4),
    "maze2d-eval-medium-v1": Spec("eval-medium", 600, 13.07, 204.93),
    "maze2d-eval-large-v1": Spec("eval-large", 800, 16.4, 302.22),
}
NAMESPACE = "mmftraj"


def _vec(values) -> str:
    return " ".join(repr(float(v)) for v in values)


def build_mjcf(layout: Layout) -> str:
    """The MJCF d4rl's `point_maze()` generates for this layout (visual-only assets omitted)."""
    walls = []
    for i, j in np.argwhere(layout.walls):
        walls.append(
            f'<geom name="wall_{i}_{j}" type="box" conaffinity="1" pos="{_vec((i + 1, j + 1, 0))}" '
            'size="0.5 0.5 0.2" rgba=".7 .5 .3 1"/>'
        )
    return f"""<mujoco model="point_maze">
  <compiler inertiafromgeom="true" angle="radian" coordinate="local"/>
  <option timestep="0.01" gravity="0 0 0" iterations="20" integrator="Euler"/>
  <default>
    <joint damping="1" limited="false"/>
    <geom friction=".5 .1 .1" density="1000" margin="0.002" condim="1" contype="2" conaffinity="1"/>
  </default>
  <worldbody>
    <geom name="ground" size="40 40 0.25" pos="0 0 -0.1" type="plane" contype="1" conaffinity="0"/>
    <body name="particle" pos="1.2 1.2 0">
      <geom name="particle_geom" type="sphere" size="0.1" rgba="0 0 1 0" contype="1"/>
      <site name="particle_site" pos="0 0 0" size="0.2"/>
      <joint name="ball_x" type="slide" pos="0 0 0" axis="1 0 0"/>
      <joint name="ball_y" type="slide" pos="0 0 0" axis="0 1 0"/>
    </body>
    <site name="target_site" pos="0 0 0" size="0.2"/>
    {chr(10).join('    ' + w for w in walls).strip()}
  </worldbody>
  <actuator>
    <motor joint="ball_x" ctrlrange="-1 1" ctrllimited="true" gear="100"/>
    <motor joint="ball_y" ctrlrange="-1 1" ctrllimited="true" gear="100"/>
  </actuator>
</mujoco>
"""


class Maze2dEnv(gym.Env):
    """One maze2d variant. Observation (x, y, vx, vy) float64; action (ax, ay) in [-1, 1].

    `reset(seed=..., options={"start": (x, y), "goal": (x, y), "qvel": (vx, vy)})`: without a start
    the particle starts in a random free cell (goal cell included) + U(-0.1, 0.1) noise with velocity
    0.1 N(0, 1), as d4rl; an explicit start is used exactly (velocity `qvel`, default 0). The goal
    defaults to the layout's 'G' cell; an explicit goal must lie in a free cell (else UserError).
    Use `gymnasium.make("mmftraj/maze2d-umaze-v1")` for the d4rl episode length (TimeLimit).
    """

    metadata = {"render_modes": []}

    def __init__(self, layout: str | Layout = "umaze", ref_min: float | None = None,
                 ref_max: float | None = None, max_episode_steps: int | None = None):
        self.layout = layout if isinstance(layout, Layout) else load_layout(layout)
        self.ref_min, self.ref_max = ref_min, ref_max
        self.max_episode_steps = max_episode_steps
        self.model = mujoco.MjModel.from_xml_string(build_mjcf(self.layout))
        self.data = mujoco.MjData(self.model)
        self.default_goal = self.layout.cell_to_xy(self.layout.goal_cell)
        self.goal = self.default_goal.copy()
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(4,), dtype=np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(2,), dtype=np.float32)

    # -- state ---------------------------------------------------------------------------------
    def set_state(self, qpos, qvel) -> None:
        """Set (qpos, qvel) and recompute derived quantities (mujoco-py's `set_state`)."""
        self.data.qpos[:] = qpos
        self.data.qvel[:] = qvel
        mujoco.mj_forward(self.model, self.data)

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.data.qpos, self.data.qvel])

    def _check_goal(self, goal) -> np.ndarray:
        goal = np.asarray(goal, dtype=np.float64).reshape(-1)
        if goal.shape != (2,) or not np.all(np.isfinite(goal)):
            raise UserError(f"goal must be two finite numbers (x, y), got {goal.tolist()}")
        if not self.layout.is_free(goal):
            where = "outside the maze" if not self.layout.in_bounds(self.layout.xy_to_cell(goal)) else "inside a wall"
            raise UserError(f"goal {tuple(goal.tolist())} lies {where} of layout {self.layout.name!r}")
        return goal

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        mujoco.mj_resetData(self.model, self.data)
        rng = self.np_random
        if options.get("start") is not None:
            qpos = np.asarray(options["start"], dtype=np.float64).reshape(-1)
            if qpos.shape != (2,) or not self.layout.is_free(qpos):
                raise UserError(f"start {qpos.tolist()} is not a free point of layout {self.layout.name!r}")
            qvel = np.asarray(options.get("qvel", (0.0, 0.0)), dtype=np.float64)
        else:
            qpos = random_free_point(self.layout, rng)
            qvel = 0.1 * rng.standard_normal(2)
        self.goal = self._check_goal(options["goal"]) if options.get("goal") is not None else self.default_goal.copy()
        self.set_state(qpos, qvel)
        return self._obs(), {"goal": self.goal.copy()}

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        self.set_state(self.data.qpos, np.clip(self.data.qvel, -VEL_CLIP, VEL_CLIP))
        self.data.ctrl[:] = action
        mujoco.mj_step(self.model, self.data)
        obs = self._obs()
        reward = 1.0 if np.linalg.norm(obs[:2] - self.goal) <= REWARD_RADIUS else 0.0
        return obs, reward, False, False, {"goal": self.goal.copy()}

    def set_goal(self, goal) -> None:
        """Move the goal to a free point (else UserError); the rewards of later steps use it."""
        self.goal = self._check_goal(goal)

    def push_step(self, action, kick) -> tuple:
        """`step(action)` with the velocity changed by `kick` (2,) first: step's five values and
        whether the push was applied. A push is refused (the step is taken as if it never came, bit
        for bit) when its step would end with the particle's centre inside a wall or outside the
        maze. Velocities are still clipped to ±5 per axis before the step, so a push is bounded."""
        saved = np.empty(mujoco.mj_stateSize(self.model, STATE))
        mujoco.mj_getState(self.model, self.data, saved, STATE)
        self.data.qvel[:] += np.asarray(kick, dtype=np.float64)
        out = self.step(action)
        if self.layout.is_free(out[0][:2]):
            return (*out, True)
        mujoco.mj_setState(self.model, self.data, saved, STATE)
        return (*self.step(action), False)

    def get_normalized_score(self, episode_return: float) -> float:
        """100 * (return - ref_min) / (ref_max - ref_min), with d4rl's reference returns."""
        if self.ref_min is None or self.ref_max is None:
            raise UserError(f"layout {self.layout.name!r} has no reference scores to normalize against")
        return 100.0 * (episode_return - self.ref_min) / (self.ref_max - self.ref_min)


def random_free_point(layout: Layout, rng: np.random.Generator) -> np.ndarray:
    """d4rl's random reset location and random target (`set_target`, Diffuser's multi-task goals):
    a uniformly drawn free cell's centre plus U(-0.1, 0.1) on each axis; (2,)."""
    cells = layout.free_cells
    cell = cells[int(rng.integers(len(cells)))]
    return layout.cell_to_xy(cell) + rng.uniform(-0.1, 0.1, size=2)


def env_layout(name: str) -> str:
    """The layout name of a maze2d or PointMaze env id."""
    key = name.split("/")[-1]
    if key in POINTMAZE:
        return POINTMAZE[key].maze
    if key not in SPECS:
        raise choice_error("maze2d env", name, [*SPECS, *POINTMAZE])
    return SPECS[key].layout


def episode_length(name: str) -> int:
    """The registered episode length of a maze2d or PointMaze env id."""
    key = name.split("/")[-1]
    if key in POINTMAZE:
        return POINTMAZE[key].max_episode_steps
    if key not in SPECS:
        raise choice_error("maze2d env", name, [*SPECS, *POINTMAZE])
    return SPECS[key].max_episode_steps


def make_maze2d(name: str = "maze2d-umaze-v1", layout: str | Layout | None = None) -> Maze2dEnv:
    """An unwrapped env by d4rl name (no TimeLimit), optionally on a user layout (no ref scores);
    a `PointMaze_*-v3` id gives gymnasium-robotics' PointMaze in this frame (envs/pointmaze.py)."""

    key = name.split("/")[-1]
    if key in POINTMAZE and layout is None:  # gymnasium-robotics' PointMaze, in this frame
        return PointMazeEnv(key)
    if key not in SPECS:
        raise choice_error("maze2d env", name, [*SPECS, *POINTMAZE])
    spec = SPECS[key]
    if layout is not None:
        return Maze2dEnv(layout, max_episode_steps=spec.max_episode_steps)
    return Maze2dEnv(spec.layout, spec.ref_min, spec.ref_max, spec.max_episode_steps)


def register_envs() -> None:
    """Register `mmftraj/maze2d-*` gymnasium ids (idempotent)."""
    for env_id, spec in SPECS.items():
        full = f"{NAMESPACE}/{env_id}"
        if full in gym.registry:
            continue
        gym.register(
            id=full,
            entry_point="mmftraj.envs.maze2d:Maze2dEnv",
            max_episode_steps=spec.max_episode_steps,
            kwargs={"layout": spec.layout, "ref_min": spec.ref_min, "ref_max": spec.ref_max,
                    "max_episode_steps": spec.max_episode_steps},
        )
