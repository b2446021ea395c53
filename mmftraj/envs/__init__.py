"""Environments: d4rl's maze2d on modern MuJoCo, its expert controller, and top-down plots.

Usage::

    import gymnasium as gym
    import mmftraj.envs                                   # registers mmftraj/maze2d-* ids
    env = gym.make("mmftraj/maze2d-umaze-v1")             # TimeLimit 300, d4rl reference scores
    obs, info = env.reset(seed=0, options={"start": (3.0, 1.0), "goal": (1.0, 1.0)})
    obs, reward, terminated, truncated, info = env.step([0.5, -0.2])
    env.unwrapped.get_normalized_score(total_reward)      # 100 * (R - min) / (max - min)

    from mmftraj.envs import load_layout, make_maze2d, WaypointController, plot_maze
    layout = load_layout("large")            # or a path to your own layout file
    layout.is_free((x, y)); layout.xy_to_cell((x, y)); layout.cell_to_xy((i, j)); layout.free_cells
    env = make_maze2d("maze2d-large-v1")     # unwrapped env (no TimeLimit); .layout, .goal, .max_episode_steps
    ctrl = WaypointController(layout, rng=np.random.default_rng(0)); action = ctrl(obs, goal)
    fig = plot_maze(layout, lines=[plan_xy, rollout_xy], start=obs[:2], goal=env.goal, path="maze.png")

Evaluation disturbances (pushes, actuator and observation noise, a goal that moves once):
`mmftraj.envs.disturbances` (DisturbedEnv wraps an env).

Positions are d4rl's qpos coordinates: cell (i, j) is centred at (i, j); walls look shifted by -0.2.
"""

from .controller import WaypointController
from .layouts import BUILTIN as LAYOUTS
from .layouts import Layout, load_layout, parse_layout
from .maze2d import SPECS, Maze2dEnv, build_mjcf, make_maze2d, random_free_point, register_envs
from .render import plot_maze

register_envs()

__all__ = ["LAYOUTS", "SPECS", "Layout", "Maze2dEnv", "WaypointController", "build_mjcf", "load_layout",
           "make_maze2d", "parse_layout", "plot_maze", "random_free_point", "register_envs"]
