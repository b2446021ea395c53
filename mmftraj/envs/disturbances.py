"""Disturbances of a maze env during evaluation: velocity pushes, actuator noise, observation
noise, and a goal that moves once. They test whether closed-loop re-planning recovers.

    d = Disturbances(push_size=2.0, push_rate=0.02, obs_noise=0.05, goal_move_at=150)
    env = DisturbedEnv(make_maze2d("maze2d-umaze-v1"), d)    # what planning.run_episode uses
    obs, info = env.reset(seed=7)        # obs: what the controller sees; info["state"]: the true one

Each disturbance draws from its own random stream, seeded from the episode's seed and a constant
of its own: switching one on changes no draw of another, nor of the env (its start, its goal), so
an undisturbed episode is the plain env's, bit for bit. The push stream draws (u, angle) at every
step whatever the rate, so the pushes at a lower rate are a subset of those at a higher one.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..errors import UserError
from .layouts import Layout

PUSH_STREAM, ACTION_STREAM, OBS_STREAM, GOAL_STREAM = 0x9054, 0xAC71, 0x0B5E, 0x60A2


@dataclass(frozen=True)
class Disturbances:
    """What disturbs an episode (all off by default); checked on construction, one line for all."""

    push_size: float = 0.0  # velocity change of a push (qvel units), in a uniformly random direction
    push_rate: float = 0.0  # probability of a push at each env step
    action_noise: float = 0.0  # std of Gaussian noise added to each action component (before the env's clip)
    obs_noise: float = 0.0  # std of Gaussian noise on each observed component (x, y, vx, vy)
    goal_move_at: int = 0  # after this many env steps the goal moves once to another free cell; 0: never

    def __post_init__(self):
        bad = [f"eval.{k} must be a number ≥ 0, got {getattr(self, k)}"
               for k in ("push_size", "action_noise", "obs_noise") if not 0 <= getattr(self, k) < float("inf")]
        if not 0 <= self.push_rate <= 1:
            bad.append(f"eval.push_rate must be a probability in [0, 1], got {self.push_rate}")
        if isinstance(self.goal_move_at, bool) or not isinstance(self.goal_move_at, int) or self.goal_move_at < 0:
            bad.append(f"eval.goal_move_at must be a whole number of env steps ≥ 0 (0: never), got {self.goal_move_at}")
        if bad:
            raise UserError("; ".join(bad))

    @classmethod
    def of(cls, config) -> Disturbances:
        """The fields of the same names in `config` (a RolloutConfig)."""
        return cls(**{f.name: getattr(config, f.name) for f in fields(cls)})

    @property
    def active(self) -> bool:
        return self != Disturbances()

    @property
    def pushes(self) -> bool:
        return self.push_size > 0 and self.push_rate > 0


def moved_goal(layout: Layout, goal, rng: np.random.Generator) -> np.ndarray:
    """A new goal (2,): the centre of a uniformly drawn free cell other than the goal's own, plus
    U(-0.1, 0.1) per axis as d4rl's targets (inside the cell, so a free point)."""
    here = layout.xy_to_cell(goal)
    cells = [c for c in layout.free_cells if c != here]
    if not cells:
        raise UserError(f"eval.goal_move_at: layout {layout.name!r} has no free cell besides the goal's")
    return layout.cell_to_xy(cells[int(rng.integers(len(cells)))]) + rng.uniform(-0.1, 0.1, size=2)


class DisturbedEnv:
    """`env` (a Maze2dEnv or PointMazeEnv) under `disturbances`, exposing what
    `planning.run_episode` uses. Observations carry the observation noise; `info["state"]` is the
    true state and `info["goal"]` the current goal. Per step, in order: action noise, then a push
    (`env.push_step`: refused when its step would end with the particle's centre in a wall), then
    the goal's move after the `goal_move_at`-th step (that step's reward still used the old goal).
    `pushes` and `refused` count the current episode's pushes."""

    def __init__(self, env, disturbances: Disturbances):
        d = self.disturbances = disturbances
        if d.pushes and not hasattr(env, "push_step"):
            raise UserError(f"eval.push_size/push_rate need a maze2d-* env; {type(env).__name__} has no pushes")
        if d.goal_move_at >= env.max_episode_steps:
            raise UserError(f"eval.goal_move_at must be below the episode length {env.max_episode_steps} "
                            f"(0: never), got {d.goal_move_at}")
        self.env, self.layout, self.max_episode_steps = env, env.layout, env.max_episode_steps
        self.steps = self.pushes = self.refused = 0
        self._streams(0)

    def _streams(self, seed: int) -> None:
        self.push_rng, self.action_rng, self.obs_rng, self.goal_rng = (
            np.random.default_rng(np.random.SeedSequence([seed, stream]))
            for stream in (PUSH_STREAM, ACTION_STREAM, OBS_STREAM, GOAL_STREAM))

    def observe(self, state: np.ndarray) -> np.ndarray:
        sigma = self.disturbances.obs_noise
        return state + sigma * self.obs_rng.standard_normal(state.shape) if sigma > 0 else state

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        state, info = self.env.reset(seed=seed, options=options)
        self._streams(int(seed or 0))
        self.steps = self.pushes = self.refused = 0
        return self.observe(state), {**info, "state": state}

    def step(self, action):
        d = self.disturbances
        action = np.asarray(action, dtype=np.float64)
        if d.action_noise > 0:
            action = action + d.action_noise * self.action_rng.standard_normal(action.shape)
        pushed = False
        if d.pushes:
            u, angle = self.push_rng.random(), self.push_rng.uniform(0.0, 2 * np.pi)
            pushed = u < d.push_rate
        if pushed:
            *out, applied = self.env.push_step(action, d.push_size * np.array([np.cos(angle), np.sin(angle)]))
            self.pushes += 1
            self.refused += not applied
        else:
            out = self.env.step(action)
        state, reward, terminated, truncated, info = out
        self.steps += 1
        if d.goal_move_at and self.steps == d.goal_move_at:
            self.env.set_goal(moved_goal(self.layout, info["goal"], self.goal_rng))
            info = {**info, "goal": np.asarray(self.env.goal, dtype=np.float64).copy()}
        return self.observe(state), reward, terminated, truncated, {**info, "state": state}

    def get_normalized_score(self, episode_return: float) -> float:
        return self.env.get_normalized_score(episode_return)
