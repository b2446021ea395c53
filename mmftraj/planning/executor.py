"""Executing plans in a maze2d env: Diffuser's tracking controller, re-planning on a schedule or
when a plan runs out away from the goal."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .planner import Planner


def tracking_action(obs: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Diffuser's maze2d controller: (x_next - x)[:2] + (ẋ_next - ẋ) (the env clips it)."""
    return (target[:2] - obs[:2]) + (target[2:4] - obs[2:4])


@dataclass
class Episode:
    episode_return: float
    score: float
    success: bool
    path: np.ndarray  # (T + 1, obs_dim) visited observations
    goal: np.ndarray
    plans: list = field(default_factory=list)  # (env step, Plan) for the first few plans
    plan_seconds: list = field(default_factory=list)


def run_episode(env, planner: Planner, replan_every: int = 0, seed: int = 0, max_steps: int | None = None,
                goal=None, start=None, keep_plans: int = 3, speed: float = 1.0, replan_missed: bool = False) -> Episode:
    """One episode: plan at t = 0, track the plan, replan every `replan_every` steps (0: never).

    With `replan_missed`, when the plan is used up (its arrival at the goal, or its last step) and
    the agent is not at the goal (it lags the plan, or the route is longer than the horizon), a
    new plan starts from where the agent is, instead of heading for the goal in a straight line,
    which a wall may block.

    `start`/`goal` (x, y) replace d4rl's random start and the layout's goal (free points only).
    `speed` > 1 runs the plan's clock faster than the env's (step k tracks plan state ⌈speed·k⌉):
    a plan squeezed into a fixed horizon then is not followed slower than the particle can go.
    Past the plan's end the controller tracks the goal itself with zero target velocity, as
    Diffuser's executor does with the plan's last state. Scores use the env's reference returns.
    """
    options = {"goal": tuple(goal) if goal is not None else None, "start": tuple(start) if start is not None else None}
    obs, info = env.reset(seed=seed, options=options)
    goal = np.asarray(info["goal"], dtype=np.float64)
    planner.reseed(seed)
    steps = int(max_steps or env.max_episode_steps)
    hold = np.concatenate([goal, np.zeros(len(obs) - 2)])
    total, path, plans, seconds = 0.0, [obs.copy()], [], []
    plan, k = None, 0
    for step in range(steps):
        exhausted = (plan is not None and np.ceil(speed * (k + 1) - 1e-9) > plan.end
                     and np.linalg.norm(obs[:2] - goal) > planner.settings.goal_radius)
        if plan is None or (replan_every > 0 and k >= replan_every) or (replan_missed and exhausted):
            plan, k = planner.plan(obs, goal), 0
            seconds.append(plan.seconds)
            if len(plans) < keep_plans:
                plans.append((step, plan))
        i = int(np.ceil(speed * (k + 1) - 1e-9))
        target = plan.states[i] if i <= plan.end else hold
        obs, reward, terminated, truncated, _ = env.step(tracking_action(obs, target))
        total += float(reward)
        path.append(obs.copy())
        k += 1
        if terminated:
            break
    score = float(env.get_normalized_score(total))
    return Episode(total, score, total > 0, np.asarray(path), goal, plans, seconds)
