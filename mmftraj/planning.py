"""Planning with a trajectory generator: one network evaluation per plan (k on request), then a
tracking controller that executes the plan open-loop or replans every few env steps.

Pieces, each usable alone:

    net = StartGoalNet(transformer, obs_dim=4, conditioning="both")   # u(z, r, t, start=, goal=)
    planner = Planner(net, obs_normalizer, steps=1, mode="mean", candidates=16, layout=layout)
    plan = planner.plan(obs, goal)           # Plan: states (H, 4) raw units, arrival index, candidates
    episode = run_episode(env, planner, replan_every=8, seed=0)   # return, score, path, plans

Why start/goal conditioning lives in a wrapper: the same transformer serves both ways of asking
for a plan from here to there. "inpaint" pins the first observation and the last position in the
network's input and zeroes its velocity there (so every sampler step, one or many, keeps them
exactly), as Diffuser does; "vector" feeds (start, goal) to the transformer's adaptive norms so
every token sees the goal; "both" does the two.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from .core import sample
from .errors import UserError, choice_error

CONDITIONINGS = ("inpaint", "vector", "both")
SELECTIONS = ("first", "earliest")


class StartGoalNet(nn.Module):
    """u(z, r, t, start, goal[, goal_index]) over (B, H, obs_dim) windows; start (B, obs_dim),
    goal (B, goal_dim), goal_index (B,) the step at which the plan is at the goal (default H - 1).

    The goal is a position (the first `goal_dim` observation entries): a target has no velocity
    in the data (the expert never stops), so only where to be is asked for. With `goal_anywhere`
    the network is also told the goal's step (trained on random steps), so a planner can ask for
    short plans to near goals instead of H-step detours the data never shows.
    """

    def __init__(self, net: nn.Module, obs_dim: int = 4, goal_dim: int = 2, conditioning: str = "both",
                 goal_anywhere: bool = False):
        super().__init__()
        if conditioning not in CONDITIONINGS:
            raise choice_error("conditioning", conditioning, CONDITIONINGS)
        self.net = net
        self.obs_dim, self.goal_dim, self.conditioning = obs_dim, goal_dim, conditioning
        self.goal_anywhere = goal_anywhere
        self.inpaint = conditioning in ("inpaint", "both")
        self.vector = conditioning in ("vector", "both")
        goal_entries = torch.zeros(obs_dim)
        goal_entries[:goal_dim] = 1.0
        self.register_buffer("goal_entries", goal_entries, persistent=False)

    @property
    def horizon(self) -> int:
        return self.net.cfg.horizon

    def _index(self, goal_index, n: int, device) -> torch.Tensor:
        if goal_index is None:
            return torch.full((n,), self.horizon - 1, dtype=torch.long, device=device)
        return goal_index.to(device=device, dtype=torch.long)

    def pinned(self, n: int, goal_index=None, device=None, dtype=torch.float32) -> torch.Tensor:
        """(n, H, obs_dim) 0/1 mask of the entries inpainting fixes (start row, goal position)."""
        if device is None:
            device = goal_index.device if goal_index is not None else self.goal_entries.device
        idx = self._index(goal_index, n, device)
        steps = torch.arange(self.horizon, device=device)
        goal_rows = (steps[None] == idx[:, None]).to(dtype)[..., None] * self.goal_entries.to(device, dtype)
        start_row = (steps == 0).to(dtype)[None, :, None].expand(n, -1, self.obs_dim)
        return torch.maximum(start_row, goal_rows)

    def pinned_values(self, start: torch.Tensor, goal: torch.Tensor, goal_index=None) -> torch.Tensor:
        """(B, H, obs_dim) tensor holding start at step 0 and goal at its step (zeros elsewhere)."""
        n = start.shape[0]
        idx = self._index(goal_index, n, start.device)
        values = torch.zeros(n, self.horizon, self.obs_dim, dtype=start.dtype, device=start.device)
        values[torch.arange(n, device=start.device), idx, : self.goal_dim] = goal
        values[:, 0] = start
        return values

    def loss_mask(self, n: int = 1, goal_index=None) -> torch.Tensor:
        """(n, H, obs_dim): 0 on pinned entries (their velocity is fixed at 0, nothing to learn)."""
        if not self.inpaint:
            return torch.ones(n, self.horizon, self.obs_dim)
        return 1.0 - self.pinned(n, goal_index)

    def forward(self, z, r, t, start, goal, goal_index=None):
        n = z.shape[0]
        cond = None
        if self.vector:
            parts = [start, goal]
            if self.goal_anywhere:
                idx = self._index(goal_index, n, z.device)
                parts.append((idx.to(z.dtype) / (self.horizon - 1))[:, None])
            cond = torch.cat(parts, dim=-1)
        if self.inpaint:
            keep = 1.0 - self.pinned(n, goal_index, z.device, z.dtype)
            values = self.pinned_values(start.to(z.dtype), goal.to(z.dtype), goal_index)
            return self.net(z * keep + values * (1.0 - keep), r, t, cond) * keep
        return self.net(z, r, t, cond)


# -- plans ---------------------------------------------------------------------------------------
@dataclass
class Plan:
    """A selected plan in raw units: states (H, obs_dim); `end` is the index after which the
    executor tracks the goal itself (the first arrival within the goal radius, or H - 1)."""

    states: np.ndarray
    end: int
    candidates: np.ndarray  # (N, H, obs_dim), raw units
    chosen: int
    seconds: float
    evaluations: int


def wall_hits(layout, xy: np.ndarray, where: np.ndarray | None = None) -> np.ndarray:
    """Number of points of each (…, T, 2) path that lie in a wall or outside the maze (counting
    only points where `where` is True, if given)."""
    hit = layout.blocked(xy)
    if where is not None:
        hit &= where
    return hit.sum(axis=-1)


def first_arrival(xy: np.ndarray, goal: np.ndarray, radius: float) -> np.ndarray:
    """Index of the first point of each (N, T, 2) path within `radius` of goal (T - 1 if none)."""
    near = np.linalg.norm(xy - goal, axis=-1) <= radius
    return np.where(near.any(axis=-1), near.argmax(axis=-1), xy.shape[-2] - 1)


def smooth_plans(plans: np.ndarray, width: int) -> np.ndarray:
    """Moving average of (N, H, D) plans over `width` steps (edges padded with the end states);
    the first state stays exact. One-step samples carry step-to-step jitter that the tracking
    controller's velocity term amplifies; the route is in the low frequencies."""
    if width <= 1:
        return plans
    left, right = (width - 1) // 2, width // 2
    padded = np.concatenate([np.repeat(plans[:, :1], left, 1), plans, np.repeat(plans[:, -1:], right, 1)], axis=1)
    csum = np.cumsum(np.concatenate([np.zeros_like(padded[:, :1]), padded], axis=1), axis=1)
    out = (csum[:, width:] - csum[:, :-width]) / width
    out[:, 0] = plans[:, 0]
    return out


def select_plan(plans: np.ndarray, goal, layout=None, radius: float = 0.5) -> tuple[int, int]:
    """(index, first arrival) of the plan to execute among (N, H, ≥2) candidates.

    With a layout: fewest points in walls (up to the arrival: the rest is never executed) first, then earliest arrival within `radius` of the
    goal (ties: lowest index). Without one: candidate 0.
    """
    arrival = first_arrival(plans[..., :2], np.asarray(goal, dtype=np.float64), radius)
    if layout is None or len(plans) == 1:
        return 0, int(arrival[0])
    steps = np.arange(plans.shape[1])
    hits = wall_hits(layout, plans[..., :2], where=steps[None] <= arrival[:, None])
    chosen = int(np.lexsort((np.arange(len(plans)), arrival, hits))[0])
    return chosen, int(arrival[chosen])


class Planner:
    """Samples plans from the current observation to a goal position with `steps` evaluations.

    With `candidates` > 1 a batch of plans is drawn in the same evaluations and one is kept by
    `selection`: "first" takes candidate 0; "earliest" takes the plan with the fewest points in
    walls, then the earliest arrival at the goal (a cheap rule: no extra network calls).
    """

    def __init__(self, net: StartGoalNet, normalizer, steps: int = 1, mode: str = "mean", candidates: int = 1,
                 selection: str = "earliest", layout=None, goal_radius: float = 0.5, truncate: bool = True,
                 seed: int = 0, goal_steps=(0.25, 0.5, 0.75, 1.0), smooth: int = 1):
        if selection not in SELECTIONS:
            raise choice_error("plan selection", selection, SELECTIONS)
        if steps < 1:
            raise UserError(f"--steps (network evaluations per plan) must be at least 1, got {steps}")
        if candidates < 1:
            raise UserError(f"eval.candidates must be at least 1, got {candidates}")
        if selection == "earliest" and layout is None and candidates > 1:
            raise UserError("plan selection 'earliest' needs the maze layout")
        self.net = net.eval()
        self.normalizer = normalizer
        self.steps, self.mode, self.candidates = steps, mode, candidates
        self.selection, self.layout, self.goal_radius, self.truncate = selection, layout, goal_radius, truncate
        self.generator = torch.Generator().manual_seed(seed)
        self.horizon, self.obs_dim = net.horizon, net.obs_dim
        self.goal_steps = tuple(goal_steps)
        self.smooth = int(smooth)

    def reseed(self, seed: int) -> None:
        self.generator.manual_seed(seed)

    def goal_indices(self, n: int) -> torch.Tensor | None:
        """Goal steps of n candidates: spread over `goal_steps` (fractions of H) when the network
        takes a goal step, else None (the last step)."""
        if not self.net.goal_anywhere:
            return None
        fr = torch.tensor(self.goal_steps, dtype=torch.float64)
        idx = torch.round(fr * (self.horizon - 1)).long().clamp(1, self.horizon - 1)
        return idx.repeat_interleave(int(np.ceil(n / len(idx))))[:n]

    @torch.no_grad()
    def sample_plans(self, obs, goal, n: int | None = None) -> np.ndarray:
        """(n, H, obs_dim) raw-unit plans from obs (obs_dim,) to goal position (goal_dim,)."""
        n = n or self.candidates
        goal_index = self.goal_indices(n)
        obs_n = torch.as_tensor(self.normalizer.normalize(np.asarray(obs, dtype=np.float64)), dtype=torch.float32)
        goal_full = np.zeros(self.obs_dim)
        goal_full[: self.net.goal_dim] = goal
        goal_n = torch.as_tensor(self.normalizer.normalize(goal_full)[: self.net.goal_dim], dtype=torch.float32)
        start = obs_n.expand(n, -1)
        goal_b = goal_n.expand(n, -1)
        noise = torch.randn(n, self.horizon, self.obs_dim, generator=self.generator)
        cond = {"start": start, "goal": goal_b}
        if goal_index is not None:
            cond["goal_index"] = goal_index
        if self.net.inpaint:
            pinned = self.net.pinned(n, goal_index).bool()
            noise = torch.where(pinned, self.net.pinned_values(start, goal_b, goal_index), noise)
        x = sample(self.net, noise, steps=self.steps, mode=self.mode, **cond)
        plans = self.normalizer.unnormalize(x.double().numpy())
        plans[:, 0] = np.asarray(obs, dtype=np.float64)  # exact, whatever the conditioning
        rows = goal_index.numpy() if goal_index is not None else np.full(n, self.horizon - 1)
        plans[np.arange(n), rows, : self.net.goal_dim] = goal
        return plans

    def plan(self, obs, goal) -> Plan:
        t0 = time.perf_counter()
        plans = smooth_plans(self.sample_plans(obs, goal), self.smooth)
        chosen, arrival = select_plan(plans, goal, self.layout if self.selection == "earliest" else None,
                                      self.goal_radius)
        end = arrival if self.truncate else self.horizon - 1
        return Plan(plans[chosen], end, plans, chosen, time.perf_counter() - t0, self.steps)


# -- execution -----------------------------------------------------------------------------------
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
                     and np.linalg.norm(obs[:2] - goal) > planner.goal_radius)
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
