"""gymnasium-robotics' PointMaze (`PointMaze_UMaze-v3`, `_Medium-v3`, `_Large-v3`) in mmftraj's
maze2d frame, its expert by the recipe of Minari's `D4RL/pointmaze/*` datasets, and reference
returns computed the way Minari computes them.

Why a frame: PointMaze and d4rl's maze2d share walls, goal cells, gear, damping and time step, but
PointMaze centres the maze (x to the right, y up, cell (i, j) at x = j + 0.5 - x_c,
y = y_c - i - 0.5) while d4rl puts cell (i, j) at qpos (i, j) with its walls shifted by -0.2. In
maze2d's frame X = y_c - y - 0.5 - 0.2, Y = x + x_c - 0.5 - 0.2, so one layout, planner, tracking
controller and model serve both; velocities and actions rotate with it (VX = -vy, VY = vx;
ax = AY, ay = -AX). Data stay in PointMaze's own frame on disk (Minari format) and are turned
into maze2d's frame when loaded.

Evaluation env = Minari's: the maze with its 'G' cell as the only goal (plus PointMaze's
U(-0.25, 0.25) goal noise), a random start in any other free cell (plus the same noise),
`continuing_task=True, reset_target=False` (reward 1 for every step within 0.45 of the goal), and
the registered episode length (300 / 600 / 800 steps).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
from dataclasses import dataclass

import gymnasium as gym
import numpy as np

from ..errors import UserError, choice_error
from ..resources import resource_path
from .controller import WaypointController
from .layouts import WALL_OFFSET, Layout, load_layout


@dataclass(frozen=True)
class PointMazeSpec:
    maze: str  # mmftraj's layout of the same walls and 'G' cell
    max_episode_steps: int


POINTMAZE = {
    "PointMaze_UMaze-v3": PointMazeSpec("umaze", 300),
    "PointMaze_Medium-v3": PointMazeSpec("medium", 600),
    "PointMaze_Large-v3": PointMazeSpec("large", 800),
}
REFERENCE_FILE = ("envs", "pointmaze", "reference_returns.json")
GAINS = (10.0, -1.0)  # the recipe's PD gains: a = p (waypoint - position) + d velocity
WAYPOINT_RADIUS = 0.1  # the recipe's distance at which the next waypoint is taken
ACTION_NOISE = 0.5  # the recipe adds N(0, 0.5²) to every data-collection action, then clips to [-1, 1]


def check_env_id(env_id: str) -> PointMazeSpec:
    if env_id not in POINTMAZE:
        raise choice_error("PointMaze env", env_id, POINTMAZE)
    return POINTMAZE[env_id]


def make_gym_env(env_id: str, evaluation: bool):
    """The gymnasium-robotics env: Minari's evaluation env (one goal, 'G') or its data-collection
    env (every free cell a goal, a new one each time the ball reaches the current one)."""
    check_env_id(env_id)
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):  # import notices
            import gymnasium_robotics
    except ImportError:
        raise UserError("PointMaze needs gymnasium-robotics: pip install 'mmftraj[pointmaze]'") from None
    gym.register_envs(gymnasium_robotics)
    if not evaluation:
        return gym.make(env_id, continuing_task=True, reset_target=True, max_episode_steps=10**9)
    layout = load_layout(POINTMAZE[env_id].maze)
    maze_map = [["g" if (i, j) == layout.goal_cell else int(w) for j, w in enumerate(row)]
                for i, row in enumerate(layout.walls)]
    return gym.make(env_id, maze_map=maze_map, continuing_task=True, reset_target=False)


@dataclass(frozen=True)
class Frame:
    """PointMaze's (x, y) <-> maze2d's (X, Y) for a maze with these map centres (scaling 1)."""

    x_center: float
    y_center: float

    @classmethod
    def of(cls, gym_env) -> Frame:
        maze = gym_env.unwrapped.maze
        if maze.maze_size_scaling != 1:
            raise UserError(f"PointMaze with maze_size_scaling {maze.maze_size_scaling} is not supported (1 only)")
        return cls(float(maze.x_map_center), float(maze.y_map_center))

    def position_in(self, xy) -> np.ndarray:
        xy = np.asarray(xy, dtype=np.float64)
        X = self.y_center - xy[..., 1] - 0.5 - WALL_OFFSET
        Y = xy[..., 0] + self.x_center - 0.5 - WALL_OFFSET
        return np.stack([X, Y], -1)

    def position_out(self, XY) -> np.ndarray:
        XY = np.asarray(XY, dtype=np.float64)
        x = XY[..., 1] - self.x_center + 0.5 + WALL_OFFSET
        y = self.y_center - XY[..., 0] - 0.5 - WALL_OFFSET
        return np.stack([x, y], -1)

    @staticmethod
    def vector_in(v) -> np.ndarray:
        v = np.asarray(v, dtype=np.float64)
        return np.stack([-v[..., 1], v[..., 0]], -1)

    @staticmethod
    def vector_out(V) -> np.ndarray:
        V = np.asarray(V, dtype=np.float64)
        return np.stack([V[..., 1], -V[..., 0]], -1)

    def observation_in(self, obs) -> np.ndarray:
        """(…, 4) PointMaze observation (x, y, vx, vy) -> maze2d's (X, Y, VX, VY)."""
        obs = np.asarray(obs, dtype=np.float64)
        return np.concatenate([self.position_in(obs[..., :2]), self.vector_in(obs[..., 2:4])], -1)


class PointMazeEnv:
    """Minari's evaluation env in maze2d's frame, with what `planning.run_episode` uses: reset
    (options: goal, start, qvel in maze2d's frame), step, layout, max_episode_steps,
    get_normalized_score (reference returns of the same recipe)."""

    def __init__(self, env_id: str):
        spec = check_env_id(env_id)
        self.env_id = env_id
        self.env = make_gym_env(env_id, evaluation=True).unwrapped
        self.frame = Frame.of(self.env)
        self.layout: Layout = load_layout(spec.maze)
        self.max_episode_steps = spec.max_episode_steps
        self.goal = np.zeros(2)
        self.ref_min, self.ref_max = reference_returns(env_id)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        options = options or {}
        obs, _ = self.env.reset(seed=seed)
        if options.get("goal") is not None:
            self.set_goal(options["goal"])
        if options.get("start") is not None:
            start = np.asarray(options["start"], dtype=np.float64)
            if start.shape != (2,) or not self.layout.is_free(start):
                raise UserError(f"start {start.tolist()} is not a free point of {self.env_id}")
            qvel = self.frame.vector_out(options.get("qvel", (0.0, 0.0)))
            self.env.point_env.set_state(self.frame.position_out(start), qvel)
            obs = self.env._get_obs(self.env.point_env._get_obs()[0])
        self.goal = self.frame.position_in(self.env.goal)
        return self.frame.observation_in(obs["observation"]), {"goal": self.goal.copy()}

    def step(self, action):
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        obs, reward, _, _, _ = self.env.step(self.frame.vector_out(action).astype(np.float32))
        return self.frame.observation_in(obs["observation"]), float(reward), False, False, {"goal": self.goal.copy()}

    def set_goal(self, goal) -> None:
        """Move the goal (maze2d's frame) to a free point (else UserError); later rewards use it."""
        goal = np.asarray(goal, dtype=np.float64)
        if goal.shape != (2,) or not self.layout.is_free(goal):
            raise UserError(f"goal {goal.tolist()} is not a free point of {self.env_id}")
        self.env.goal = self.frame.position_out(goal)
        self.env.update_target_site_pos()
        self.goal = self.frame.position_in(self.env.goal)

    def get_normalized_score(self, episode_return: float) -> float:
        return 100.0 * (episode_return - self.ref_min) / (self.ref_max - self.ref_min)


class PointMazeExpert:
    """The recipe's waypoint controller, in PointMaze's own frame: the cell route of Q-iteration
    on the grid, each intermediate waypoint at its cell's centre minus U(0, 0.2) per axis, the
    goal itself last; a = 10 (waypoint - position) - velocity, next waypoint within 0.1."""

    def __init__(self, gym_env, rng: np.random.Generator):
        self.maze = gym_env.unwrapped.maze
        walls = np.array([[c == 1 for c in row] for row in self.maze.maze_map])
        free = tuple(int(v) for v in np.argwhere(~walls)[0])
        self.router = WaypointController(Layout("pointmaze", walls, free))  # its grid routes only
        self.rng = rng
        self.goal = None
        self.waypoints: list[np.ndarray] = []

    def _route(self, position, goal) -> None:
        start = tuple(int(v) for v in self.maze.cell_xy_to_rowcol(position))
        target = tuple(int(v) for v in self.maze.cell_xy_to_rowcol(goal))
        cells = self.router.cell_path(start, target) if start != target else []
        self.waypoints = [self.maze.cell_rowcol_to_xy(np.array(c)) - self.rng.uniform(size=2) * 0.2
                          for c in cells[:-1]] + [np.asarray(goal, dtype=np.float64).copy()]
        self.goal = np.asarray(goal, dtype=np.float64).copy()

    def __call__(self, obs: dict) -> np.ndarray:
        position, velocity = obs["achieved_goal"], obs["observation"][2:4]
        if self.goal is None or np.linalg.norm(self.goal - obs["desired_goal"]) > 1e-3:
            self._route(position, obs["desired_goal"])
        if len(self.waypoints) > 1 and np.linalg.norm(self.waypoints[0] - position) <= WAYPOINT_RADIUS:
            self.waypoints.pop(0)
        return GAINS[0] * (self.waypoints[0] - position) + GAINS[1] * velocity


def compute_reference_returns(env_id: str, episodes: int = 100, seed: int = 123) -> dict:
    """Minari's reference returns for the evaluation env: the mean return of the expert (no action
    noise) and of uniformly random actions over `episodes` episodes, with Minari's own
    `get_average_reference_score` (first reset seeded `seed`, as Minari does)."""
    from minari.utils import get_average_reference_score

    out = {}
    for name in ("expert", "random"):
        env = make_gym_env(env_id, evaluation=True)
        env.action_space.seed(seed)  # Minari leaves the random policy unseeded; seeded here to be reproducible
        policy = PointMazeExpert(env, np.random.default_rng(seed)) if name == "expert" else (
            lambda obs, env=env: env.action_space.sample())
        out[name] = get_average_reference_score(env, policy, episodes)
        env.close()
    return {"ref_max_score": out["expert"], "ref_min_score": out["random"], "episodes": episodes, "seed": seed}


def reference_returns(env_id: str) -> tuple[float, float]:
    """(ref_min, ref_max) from the committed table (envs/pointmaze/)."""
    table = json.loads(resource_path(*REFERENCE_FILE).read_text())
    if env_id not in table:
        raise UserError(f"no reference returns for {env_id}; compute them with "
                        f"`python -m mmftraj.envs.pointmaze {env_id}`")
    return float(table[env_id]["ref_min_score"]), float(table[env_id]["ref_max_score"])


if __name__ == "__main__":  # python -m mmftraj.envs.pointmaze [ENV_ID ...]: print the reference table
    print(json.dumps({e: compute_reference_returns(e) for e in (sys.argv[1:] or POINTMAZE)}, indent=1))
