"""Evaluation conditions of a split (in-distribution vs out-of-distribution) and scoring a maze2d
planner under each: which goals, which starts, which dynamics, which maze.

    conds = split_conditions(load_split("umaze-goal"))     # [Condition(id ...), Condition(ood ...)]
    result = evaluate_condition(net, normalizer, cfg.eval, "maze2d-umaze-v1", mode, conds[1], episodes=20, seed=1000)

Episode i of a condition uses seed + i (same starts and noise for every checkpoint), the goal
cell i mod |goal_cells| and the start cell i mod |start_cells| when the condition lists them
(else the layout's goal and d4rl's random reset). Scores are d4rl-normalized against the
evaluation env's reference returns; for goals other than the layout's own 'G' they are on the
same scale but not the published task, so compare variants with each other there.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

from ..data.splits import NOMINAL, Split, load_split
from ..envs import make_maze2d
from ..envs.disturbances import Disturbances
from ..envs.layouts import as_layout
from ..errors import UserError
from ..progress import tracked
from .executor import run_episode
from .rollouts import RolloutConfig, episode_goal, execution_options, make_planner


@dataclass(frozen=True)
class Condition:
    name: str  # "standard", "id", "ood" or a shift's name
    group: str  # "id" | "ood"
    env: str | None = None  # evaluation env; None: the training env
    goal_cells: tuple = ()  # ((row, col), ...) cycled over episodes; () = the layout's goal
    start_cells: tuple = ()  # cycled over episodes; () = d4rl's random reset
    damping: tuple = ()  # (value,) or (lo, hi); () = nominal
    gear: tuple = ()
    action_noise: tuple = ()

    def key(self) -> str:
        """Stable id of what is evaluated (not of its name), so identical conditions of two splits
        (e.g. the nominal one) are scored once per checkpoint."""
        data = {k: v for k, v in asdict(self).items() if k not in ("name", "group")}
        return hashlib.sha1(json.dumps(data, sort_keys=True).encode()).hexdigest()[:10]


STANDARD = Condition("standard", "id")


def split_conditions(split: Split | str | None) -> list[Condition]:
    """The evaluation conditions of a split; `None` is the plain d4rl evaluation."""
    if split is None:
        return [STANDARD]
    split = load_split(split)
    if split.kind in ("goal", "start"):
        layout = as_layout(split.layout)
        held = sorted(split.held_out_cells)
        rest = tuple(c for c in sorted(layout.free_cells) if c not in split.held_out_cells)
        field = "goal_cells" if split.kind == "goal" else "start_cells"
        return [Condition("id", "id", **{field: rest}), Condition("ood", "ood", **{field: tuple(held)})]
    if split.kind == "dynamics":
        return [STANDARD] + [Condition(s.name, "ood", damping=tuple(s.damping or ()), gear=tuple(s.gear or ()),
                                       action_noise=tuple(s.action_noise or ())) for s in split.shifts]
    if split.kind == "layout":
        return [STANDARD, Condition("ood", "ood", env=split.eval_env)]
    if split.kind == "anywhere":  # a goal at every free cell in turn, not only the layout's own
        cells = tuple(sorted(as_layout(split.layout).free_cells))
        return [STANDARD, Condition("anywhere", "ood", goal_cells=cells)]
    raise UserError(f"split {split.name!r} ({split.kind}) has no rollout evaluation; "
                    "score its held-out episodes with mmftraj.data.splits.heldout_store")


def _draw(spec: tuple, default: float, rng: np.random.Generator) -> float:
    if not spec:
        return default
    return float(spec[0]) if len(spec) == 1 else float(rng.uniform(spec[0], spec[1]))


class ShiftedEnv:
    """A Maze2dEnv under one condition: per episode it sets damping/gear, picks the start cell and
    draws action noise, all from the episode's seed. Exposes what `planning.run_episode` uses."""

    def __init__(self, env, condition: Condition):
        self.env, self.condition = env, condition
        self.layout, self.max_episode_steps = env.layout, env.max_episode_steps
        self.episode = 0  # index into the start cells, set by the caller per episode
        self.noise = 0.0
        self.noise_rng = np.random.default_rng(0)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        c, m = self.condition, self.env.model
        rng = np.random.default_rng(np.random.SeedSequence([int(seed or 0), 0xD1CE]))
        m.dof_damping[:] = _draw(c.damping, NOMINAL["damping"], rng)
        m.actuator_gear[:, 0] = _draw(c.gear, NOMINAL["gear"], rng)
        self.noise = _draw(c.action_noise, NOMINAL["action_noise"], rng)
        self.noise_rng = rng
        options = dict(options or {})
        if c.start_cells:
            cell = c.start_cells[self.episode % len(c.start_cells)]
            options["start"] = self.layout.cell_to_xy(cell) + rng.uniform(-0.1, 0.1, size=2)
            options["qvel"] = 0.1 * rng.standard_normal(2)
        return self.env.reset(seed=seed, options=options)

    def step(self, action):
        action = np.asarray(action, dtype=np.float64)
        if self.noise > 0:
            action = action + self.noise * self.noise_rng.standard_normal(action.shape)
        return self.env.step(action)

    def get_normalized_score(self, episode_return: float) -> float:
        return self.env.get_normalized_score(episode_return)


def evaluate_condition(net, normalizer, e: RolloutConfig, env_name: str, mode: str, condition: Condition,
                       episodes: int, seed: int = 0, progress: bool = False) -> dict:
    """Score `episodes` rollouts of a maze2d planner under `condition` (d4rl-normalized); `env_name`
    is the env it is evaluated in unless the condition names another."""

    if episodes < 1:
        raise UserError(f"evaluation episodes must be at least 1, got {episodes}")
    if Disturbances.of(e).active:
        raise UserError("eval.push_*, action_noise, obs_noise and goal_move_at disturb `mmftraj eval` rollouts; "
                        "a split's conditions have their own shifts (envs/splits)")
    env_name = condition.env or env_name
    env = ShiftedEnv(make_maze2d(env_name), condition)
    planner = make_planner(net, normalizer, e, mode, env.layout, seed=seed)
    scores, success = [], []
    for i in tracked(range(episodes), f"{condition.name} on {env_name}", episodes, progress):
        env.episode = i
        goal = (env.layout.cell_to_xy(condition.goal_cells[i % len(condition.goal_cells)])
                if condition.goal_cells else episode_goal(e, env.layout, seed + i))
        ep = run_episode(env, planner, seed=seed + i, goal=goal, keep_plans=0, **execution_options(e))
        scores.append(ep.score)
        success.append(ep.success)
    scores = np.asarray(scores)
    return {"condition": condition.name, "group": condition.group, "env": env_name, "episodes": episodes,
            "score_mean": float(scores.mean()),
            "score_se": float(scores.std(ddof=1) / np.sqrt(episodes)) if episodes > 1 else 0.0,
            "success_rate": float(np.mean(success))}
