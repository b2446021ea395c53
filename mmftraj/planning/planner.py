"""Plans from a start-goal trajectory generator: one network evaluation per plan (k on request),
several candidates in one batched call, smoothing, and the choice of one candidate.

    planner = Planner(net, obs_normalizer, PlanSettings(steps=1, candidates=16), layout=layout)
    planner = Planner(net, obs_normalizer, layout=layout, candidates=16)   # the same: fields as keywords
    plan = planner.plan(obs, goal)           # Plan: states (H, 4) raw units, arrival index, candidates
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from ..core import sample
from ..errors import UserError, choice_error
from ..models.start_goal import StartGoalNet

SELECTIONS = ("first", "earliest")
SMOOTH_STARTS = ("hold", "extrapolate")  # how smoothing pads a plan's start (smooth_plans)
REPLAN_GOAL_STEPS = ("settings", "remaining")  # where a re-plan puts the goal in time (Planner.plan)
REPLAN_SELECTIONS = ("selection", "nearest")  # how a re-plan keeps a candidate: by `selection`, or nearest the old plan


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


def smooth_plans(plans: np.ndarray, width: int, start: str = "hold") -> np.ndarray:
    """Moving average of (N, H, D) plans over `width` steps; the first state stays exact. One-step
    samples carry step-to-step jitter that the tracking controller's velocity term amplifies; the
    route is in the low frequencies.

    The end is padded with the last state (a plan comes to rest at its goal). The start is padded
    with the first state (`start="hold"`), which pulls the first smoothed states ahead along the
    plan (their windows average copies of the start with states further on: on a straight plan
    of width-11 smoothing, state 1 lands 1.9 steps out), or with the plan reflected through its
    first state ("extrapolate": 2·x0 − x_i), which leaves a straight plan as it is. The difference
    matters when only the first steps of each plan are executed (re-planning every step)."""
    if start not in SMOOTH_STARTS:
        raise choice_error("eval.smooth_start", start, SMOOTH_STARTS)
    if width <= 1:
        return plans
    left, right = (width - 1) // 2, width // 2
    if start == "hold":
        head = np.repeat(plans[:, :1], left, 1)
    else:
        reach = np.minimum(np.arange(left, 0, -1), plans.shape[1] - 1)  # x_left, ..., x_1 (short plans: clipped)
        head = 2 * plans[:, :1] - plans[:, reach]
    padded = np.concatenate([head, plans, np.repeat(plans[:, -1:], right, 1)], axis=1)
    csum = np.cumsum(np.concatenate([np.zeros_like(padded[:, :1]), padded], axis=1), axis=1)
    out = (csum[:, width:] - csum[:, :-width]) / width
    out[:, 0] = plans[:, 0]
    return out


def nearest_plan(plans: np.ndarray, previous: np.ndarray) -> int:
    """Index of the (N, H, ≥2) candidate nearest the (M, ≥2) rest of the plan being executed
    (row 0 of both: now): mean distance between positions over the min(H, M) overlapping steps
    (ties: lowest index). Re-plans that keep to the old route instead of a fresh mode each time."""
    m = min(plans.shape[1], len(previous))
    distance = np.linalg.norm(plans[:, :m, :2] - np.asarray(previous)[None, :m, :2], axis=-1).mean(axis=1)
    return int(np.argmin(distance))


def select_plan(plans: np.ndarray, goal, layout=None, radius: float = 0.5) -> tuple[int, int]:
    """(index, first arrival) of the plan to execute among (N, H, ≥2) candidates.

    With a layout: fewest points in walls (up to the arrival: the rest is never executed) first, then
    earliest arrival within `radius` of the goal (ties: lowest index). Without one: candidate 0.
    """
    arrival = first_arrival(plans[..., :2], np.asarray(goal, dtype=np.float64), radius)
    if layout is None or len(plans) == 1:
        return 0, int(arrival[0])
    steps = np.arange(plans.shape[1])
    hits = wall_hits(layout, plans[..., :2], where=steps[None] <= arrival[:, None])
    chosen = int(np.lexsort((np.arange(len(plans)), arrival, hits))[0])
    return chosen, int(arrival[chosen])


@dataclass(frozen=True)
class PlanSettings:
    """How a plan is drawn and one candidate kept: the planner's share of a rollout config (when
    and how plans are executed stays with run_episode). Checked on construction."""

    steps: int = 1  # network evaluations per plan
    mode: str = "mean"  # mmftraj.core.sample's mode: "mean" (mean-flow variants) or "euler" (fm)
    candidates: int = 1  # plans drawn in one batched call
    selection: str = "earliest"  # one of SELECTIONS
    goal_radius: float = 0.5
    truncate: bool = True  # the plan ends at its first arrival within goal_radius
    goal_steps: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0)  # fractions of H (goal_anywhere networks)
    smooth: int = 1  # moving-average width over sampled plans; 1: none
    smooth_start: str = "hold"  # one of SMOOTH_STARTS: how smoothing pads a plan's start
    replan_select: str = "selection"  # one of REPLAN_SELECTIONS (see Planner.plan)
    replan_goal_step: str = "settings"  # one of REPLAN_GOAL_STEPS (see Planner.plan)
    fixed_noise: bool = False  # every plan of an episode starts from the episode's first noise

    def __post_init__(self):
        if self.selection not in SELECTIONS:
            raise choice_error("plan selection", self.selection, SELECTIONS)
        if self.smooth_start not in SMOOTH_STARTS:
            raise choice_error("eval.smooth_start", self.smooth_start, SMOOTH_STARTS)
        if self.replan_goal_step not in REPLAN_GOAL_STEPS:
            raise choice_error("eval.replan_goal_step", self.replan_goal_step, REPLAN_GOAL_STEPS)
        if self.replan_select not in REPLAN_SELECTIONS:
            raise choice_error("eval.replan_select", self.replan_select, REPLAN_SELECTIONS)
        if self.steps < 1:
            raise UserError(f"--steps (network evaluations per plan) must be at least 1, got {self.steps}")
        if self.candidates < 1:
            raise UserError(f"eval.candidates must be at least 1, got {self.candidates}")
        object.__setattr__(self, "goal_steps", tuple(self.goal_steps))
        object.__setattr__(self, "smooth", int(self.smooth))

    @classmethod
    def of(cls, config, **changes) -> PlanSettings:
        """The settings of the same names in `config` (a RolloutConfig), with `changes` on top
        (fields `config` does not have, such as `mode`, must be among them)."""
        return cls(**{f.name: changes[f.name] if f.name in changes else getattr(config, f.name) for f in fields(cls)})


class Planner:
    """Samples plans from the current observation to a goal position with `settings.steps` evaluations.

    With `candidates` > 1 a batch of plans is drawn in the same evaluations and one is kept by
    `selection`: "first" takes candidate 0; "earliest" takes the plan with the fewest points in
    walls, then the earliest arrival at the goal (a cheap rule: no extra network calls).
    Keywords (`steps=`, `candidates=`, ...) replace those fields of `settings`.
    """

    def __init__(self, net: StartGoalNet, normalizer, settings: PlanSettings | None = None, layout=None,
                 seed: int = 0, **changes):
        self.settings = s = replace(settings or PlanSettings(), **changes)
        if s.selection == "earliest" and layout is None and s.candidates > 1:
            raise UserError("plan selection 'earliest' needs the maze layout")
        if s.replan_goal_step == "remaining" and not net.goal_anywhere:
            raise UserError("eval.replan_goal_step=remaining needs a model trained with the goal at any step "
                            "(--set model.goal_anywhere=true)")
        self.net = net.eval()
        self.normalizer = normalizer
        self.layout = layout
        self.generator = torch.Generator().manual_seed(seed)
        self.horizon, self.obs_dim = net.horizon, net.obs_dim
        self._noise = None  # the episode's first noise, with fixed_noise

    def reseed(self, seed: int) -> None:
        """A new episode: the generator restarts from `seed` and the fixed noise is drawn anew."""
        self.generator.manual_seed(seed)
        self._noise = None

    def noise(self, n: int) -> torch.Tensor:
        """(n, H, obs_dim) initial noise of a plan: fresh draws, or with `fixed_noise` the first
        draw since `reseed` again, so re-plans differ only by their start (and goal)."""
        if self.settings.fixed_noise and self._noise is not None and len(self._noise) == n:
            return self._noise
        noise = torch.randn(n, self.horizon, self.obs_dim, generator=self.generator)
        if self.settings.fixed_noise:
            self._noise = noise
        return noise

    def goal_indices(self, n: int) -> torch.Tensor | None:
        """Goal steps of n candidates: spread over `goal_steps` (fractions of H) when the network
        takes a goal step, else None (the last step)."""
        if not self.net.goal_anywhere:
            return None
        fr = torch.tensor(self.settings.goal_steps, dtype=torch.float64)
        idx = torch.round(fr * (self.horizon - 1)).long().clamp(1, self.horizon - 1)
        return idx.repeat_interleave(int(np.ceil(n / len(idx))))[:n]

    @torch.no_grad()
    def sample_plans(self, obs, goal, n: int | None = None, goal_step: int | None = None) -> np.ndarray:
        """(n, H, obs_dim) raw-unit plans from obs (obs_dim,) to goal position (goal_dim,); `goal_step`
        puts every candidate's goal at that step (a goal_anywhere network) instead of `goal_steps`'.

        Start and goal need no pinning in the noise: the network inpaints them itself (StartGoalNet
        pins them in its input and gives them zero velocity), and both are written into every plan
        below, so whatever the noise holds there never reaches a plan."""
        n = n or self.settings.candidates
        goal_index = self.goal_indices(n) if goal_step is None else torch.full((n,), int(goal_step))
        obs_n = torch.as_tensor(self.normalizer.normalize(np.asarray(obs, dtype=np.float64)), dtype=torch.float32)
        goal_full = np.zeros(self.obs_dim)
        goal_full[: self.net.goal_dim] = goal
        goal_n = torch.as_tensor(self.normalizer.normalize(goal_full)[: self.net.goal_dim], dtype=torch.float32)
        start = obs_n.expand(n, -1)
        goal_b = goal_n.expand(n, -1)
        noise = self.noise(n)
        cond = {"start": start, "goal": goal_b}
        if goal_index is not None:
            cond["goal_index"] = goal_index
        x = sample(self.net, noise, steps=self.settings.steps, mode=self.settings.mode, **cond)
        plans = self.normalizer.unnormalize(x.double().numpy())
        plans[:, 0] = np.asarray(obs, dtype=np.float64)  # exact, whatever the conditioning
        rows = goal_index.numpy() if goal_index is not None else np.full(n, self.horizon - 1)
        plans[np.arange(n), rows, : self.net.goal_dim] = goal
        return plans

    def plan(self, obs, goal, previous: np.ndarray | None = None) -> Plan:
        """A plan from obs (obs_dim,) to goal (2,). `previous` (M, ≥2) is the rest of the plan being
        executed, its row 0 aligned with the new plan's (now); with replan_select="nearest" the
        candidate nearest it is kept, and without it (an episode's first plan, a plan used up, a
        moved goal) `selection` decides."""
        s = self.settings
        t0 = time.perf_counter()
        goal_step = None
        if s.replan_goal_step == "remaining" and previous is not None and len(previous) > 1:
            # arrive when the plan being executed would have: the re-plan keeps its timing instead
            # of pushing the arrival a whole window away (training puts goals at steps ≥ H/8)
            goal_step = int(np.clip(len(previous) - 1, max(1, self.horizon // 8), self.horizon - 1))
        plans = smooth_plans(self.sample_plans(obs, goal, goal_step=goal_step), s.smooth, s.smooth_start)
        if s.replan_select == "nearest" and previous is not None and len(previous) > 0:
            chosen = nearest_plan(plans, previous)
            arrival = int(first_arrival(plans[chosen : chosen + 1, :, :2], np.asarray(goal, dtype=np.float64),
                                        s.goal_radius)[0])
        else:
            chosen, arrival = select_plan(plans, goal, self.layout if s.selection == "earliest" else None,
                                          s.goal_radius)
        end = arrival if s.truncate else self.horizon - 1
        return Plan(plans[chosen], end, plans, chosen, time.perf_counter() - t0, s.steps)
