"""Executing plans in a maze2d env: Diffuser's tracking controller, re-planning on a schedule, when
a plan runs out away from the goal or when the goal moves, and temporal ensembling of recent plans."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .planner import Plan, Planner


def tracking_action(obs: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Diffuser's maze2d controller: (x_next - x)[:2] + (ẋ_next - ẋ) (the env clips it)."""
    return (target[:2] - obs[:2]) + (target[2:4] - obs[2:4])


def remaining(plan: Plan, k: int, speed: float = 1.0) -> np.ndarray:
    """(M, obs_dim) what is left to track of `plan` after k env steps: its state for now (the
    target of the last step) up to its end; empty once it is used up."""
    return plan.states[int(np.ceil(speed * k - 1e-9)) : plan.end + 1]


def target_index(k: int, speed: float = 1.0, lookahead: int = 1) -> int:
    """Index of the plan state tracked on the plan's k-th env step (k = 0: the step it was made):
    ⌈speed·(k + 1)⌉, the next state on the plan's clock (Diffuser's), or `lookahead` − 1 states
    past it."""
    return int(np.ceil(speed * (k + 1) - 1e-9)) + lookahead - 1


def blended_target(recent: list, step: int, speed: float, hold: np.ndarray, lookahead: int = 1) -> np.ndarray:
    """Target of env step `step` from the `recent` plans ((env step made, Plan), newest last):
    the weighted mean of what each would track now, with weight 2^-age (age 0: the newest). The
    newest always counts (its state, or past its end the goal at rest, `hold`); an older plan
    counts while it lasts (up to its end). One plan: exactly its own target."""
    targets, weights = [], []
    for age, (made, plan) in enumerate(reversed(recent)):
        i = target_index(step - made, speed, lookahead)
        if i <= plan.end or age == 0:
            targets.append(plan.states[i] if i <= plan.end else hold)
            weights.append(0.5**age)
    w = np.asarray(weights)
    return (w[:, None] * np.stack(targets)).sum(axis=0) / w.sum()


@dataclass
class Episode:
    episode_return: float
    score: float
    success: bool
    path: np.ndarray  # (T + 1, obs_dim) visited states (true ones when the env adds observation noise)
    goal: np.ndarray  # the episode's first goal
    plans: list = field(default_factory=list)  # (env step, Plan) for the first few plans
    plan_seconds: list = field(default_factory=list)


def run_episode(env, planner: Planner, replan_every: int = 0, seed: int = 0, max_steps: int | None = None,
                goal=None, start=None, keep_plans: int = 3, speed: float = 1.0, replan_missed: bool = False,
                blend: int = 1, lookahead: int = 1, plan_velocity: str = "observed") -> Episode:
    """One episode: plan at t = 0, track the plan, replan every `replan_every` steps (0: never).

    With `replan_missed`, when the plan is used up (its arrival at the goal, or its last step) and
    the agent is not at the goal (it lags the plan, or the route is longer than the horizon), a
    new plan starts from where the agent is, instead of heading for the goal in a straight line,
    which a wall may block.

    `start`/`goal` (x, y) replace d4rl's random start and the layout's goal (free points only).
    `speed` > 1 runs the plan's clock faster than the env's (step k tracks plan state ⌈speed·k⌉):
    a plan squeezed into a fixed horizon then is not followed slower than the particle can go.
    `lookahead` = L tracks the plan state L − 1 past the next one on its clock (1: the next one,
    Diffuser's; at speed 1, L states ahead of now). The tracking controller's pull grows with the
    distance to its target: re-planning every step with L = 1 keeps that distance at one plan step,
    and the agent moves slower than when it lags a plan tracked open loop
    (benchmarks/records/maze2d_closed_loop/README.md).
    `plan_velocity="zero"` draws every plan from the agent's position at rest instead of its
    observed state: a plan that starts with a push's velocity keeps part of it.
    Past the plan's end the controller tracks the goal itself with zero target velocity, as
    Diffuser's executor does with the plan's last state. Scores use the env's reference returns.

    `blend` = K > 1 tracks the weighted mean of the last K plans' targets (`blended_target`:
    temporal ensembling). A re-plan hands the rest of the current plan (`remaining`) to
    `planner.plan`, for its replan_select="nearest". When the env moves the goal (`info["goal"]`
    changes), a new plan is made at once, from the selection rule, and older plans are dropped.
    An env that adds observation noise gives the true state as `info["state"]` (kept in `path`).
    """
    options = {"goal": tuple(goal) if goal is not None else None, "start": tuple(start) if start is not None else None}
    obs, info = env.reset(seed=seed, options=options)
    goal = np.asarray(info["goal"], dtype=np.float64)
    planner.reseed(seed)
    steps = int(max_steps or env.max_episode_steps)
    hold = np.concatenate([goal, np.zeros(len(obs) - 2)])
    first_goal = goal
    total, path, plans, seconds = 0.0, [info.get("state", obs).copy()], [], []
    plan, k, recent, moved = None, 0, [], False
    for step in range(steps):
        exhausted = (plan is not None and target_index(k, speed, lookahead) > plan.end
                     and np.linalg.norm(obs[:2] - goal) > planner.settings.goal_radius)
        if plan is None or moved or (replan_every > 0 and k >= replan_every) or (replan_missed and exhausted):
            previous = None if plan is None or moved else remaining(plan, k, speed)
            start = obs if plan_velocity == "observed" else np.concatenate([obs[:2], np.zeros(len(obs) - 2)])
            plan, k = planner.plan(start, goal, previous), 0
            recent = ([] if moved else recent)[-(blend - 1):] if blend > 1 else []
            recent.append((step, plan))
            moved = False
            seconds.append(plan.seconds)
            if len(plans) < keep_plans:
                plans.append((step, plan))
        target = blended_target(recent, step, speed, hold, lookahead)
        obs, reward, terminated, truncated, info = env.step(tracking_action(obs, target))
        total += float(reward)
        path.append(info.get("state", obs).copy())
        k += 1
        if "goal" in info and not np.array_equal(info["goal"], goal):
            goal = np.asarray(info["goal"], dtype=np.float64)
            hold = np.concatenate([goal, np.zeros(len(obs) - 2)])
            moved = True
        if terminated:
            break
    score = float(env.get_normalized_score(total))
    return Episode(total, score, total > 0, np.asarray(path), first_goal, plans, seconds)
