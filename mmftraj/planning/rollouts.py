"""Rollout evaluation of a trajectory planner on maze2d: N fixed-seed episodes, D4RL-normalized
score mean ± standard error, success rate, plan latency (median ms at batch 1) and network
evaluations per plan, plus pictures of plans and rollouts on the maze.

Episode i resets the env with seed `seed + i` (d4rl's random start, the layout's goal), so two
checkpoints evaluated with the same seed face the same starts. `goals="random"` is Diffuser's
multi-task protocol ("multi2d"): each episode's goal is a random free cell's centre plus
U(-0.1, 0.1) noise (d4rl's `set_target`), drawn from the episode's seed alone, scored with the same
reference returns.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from ..envs import make_maze2d, plot_maze, random_free_point
from ..envs.disturbances import Disturbances, DisturbedEnv
from ..errors import UserError
from ..io import atomic_path
from ..progress import tracked
from .executor import run_episode
from .planner import Planner, PlanSettings


@dataclass
class RolloutConfig:
    """How a maze2d planner is sampled and executed, and how its rollouts are scored (the
    `eval` section of a maze2d config)."""

    episodes: int = 100
    steps: int = 1  # network evaluations per plan (mean-flow variants)
    fm_steps: int = 16  # Euler steps for `fm` checkpoints when --steps is not given
    candidates: int = 1  # plans per call, one kept by `selection`; 16 + earliest measured no better (maze2d_results.md)
    selection: Literal["first", "earliest"] = "earliest"
    goal_steps: list[float] = field(default_factory=lambda: [0.25, 0.5, 0.75, 1.0])  # goal_anywhere models
    replan_every: int = 0  # env steps between plans; 0: no scheduled re-plan (only replan_missed's); measured no worse
    replan_missed: bool = True  # a plan used up with the agent away from the goal: plan again
    smooth: int = 11  # moving-average width (steps) over sampled plans; 1: none. 11: +6 points on U-Maze
    smooth_start: Literal["hold", "extrapolate"] = "hold"  # pad a plan's start with its first state, or reflect it
    speed: float = 1.0  # plan clock / env clock while tracking (see planning.run_episode)
    lookahead: int = 1  # track the plan state this many steps past its clock (1: the next one)
    plan_velocity: Literal["observed", "zero"] = "observed"  # zero: plan from the agent's position at rest
    truncate: bool = True  # track the goal from the plan's first arrival within goal_radius
    goal_radius: float = 0.5
    env: str | None = None  # evaluation env; None: the training env
    goal: list[float] | None = None  # a goal (x, y) instead of the layout's; must be a free point
    goals: Literal["layout", "random"] = "layout"  # random: a random free-cell goal each episode (multi-task)
    # coherent re-planning (docs/usage.md); the defaults are plain re-planning
    replan_select: Literal["selection", "nearest"] = "selection"  # nearest: the candidate nearest the old plan's rest
    fixed_noise: bool = False  # the same initial noise for every plan of an episode
    replan_goal_step: Literal["settings", "remaining"] = "settings"  # remaining: arrive when the old plan would
    blend: int = 1  # track the weighted mean of the last `blend` plans (weights 2^-age); 1: the newest only
    # disturbances (mmftraj.envs.disturbances), each from its own stream of the episode's seed; 0: off
    push_size: float = 0.0  # velocity kick (qvel units) in a random direction
    push_rate: float = 0.0  # probability of a kick per env step
    action_noise: float = 0.0  # std of Gaussian actuator noise
    obs_noise: float = 0.0  # std of Gaussian noise on what the controller and planner see
    goal_move_at: int = 0  # after this many env steps the goal moves once to another random free cell
    plots: int = 6  # episodes drawn in rollouts.png / plans.png
    latency_repeats: int = 50
    train_episodes: int = 20  # episodes scored at the end of `train` (0: none)


def make_planner(net, normalizer, e: RolloutConfig, mode: str, layout, candidates: int | None = None,
                 seed: int = 0) -> Planner:
    """The planner of these eval settings (`candidates` replaces eval.candidates: 1 for latency)."""
    settings = PlanSettings.of(e, mode=mode, candidates=candidates or e.candidates)
    return Planner(net, normalizer, settings, layout=layout, seed=seed)


# Named execution protocols (`mmftraj eval --protocol NAME`): the eval fields each one sets.
# diffuser: Diffuser's maze2d protocol - plan once, track it open loop (after its end, hold its last
#   state), no smoothing, one candidate (so the maze map is never read), no re-plan when missed.
# every-step: closed loop, a new plan from the agent's state at every env step.
# coherent: every-step with plans that agree with each other: 8 candidates, the one nearest the
#   old plan kept, the episode's noise fixed, the last 4 plans blended (not yet measured).
PROTOCOLS = {
    "diffuser": {"replan_every": 0, "replan_missed": False, "smooth": 1, "candidates": 1, "truncate": False,
                 "speed": 1.0},
    "every-step": {"replan_every": 1},
    "coherent": {"replan_every": 1, "candidates": 8, "replan_select": "nearest", "fixed_noise": True, "blend": 4},
}


def protocol_overrides(name: str) -> list[str]:
    """`--set` entries of a named protocol ("default": none, the config's own eval settings)."""
    if name == "default":
        return []
    if name not in PROTOCOLS:
        raise UserError(f"unknown protocol {name!r}; valid choices: default, {', '.join(PROTOCOLS)}")
    return [f"eval.{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in PROTOCOLS[name].items()]


GOAL_STREAM = 0x60A1  # mixed into an episode's seed for its random goal: independent of the env's draws


def episode_goal(e: RolloutConfig, layout, episode_seed: int):
    """The goal of the episode with this seed: eval.goal, a random free point (goals=random), or
    None (the layout's own goal)."""
    if e.goals == "random":
        if e.goal is not None:
            raise UserError("eval.goal (one fixed goal) and eval.goals=random (a random goal each episode) "
                            "exclude each other")
        return random_free_point(layout, np.random.default_rng(np.random.SeedSequence([episode_seed, GOAL_STREAM])))
    if e.goals != "layout":
        raise UserError(f"eval.goals must be 'layout' or 'random', got {e.goals!r}")
    return e.goal


def execution_options(e: RolloutConfig) -> dict:
    """run_episode's execution settings (shared by evaluations and reports)."""
    return {"replan_every": e.replan_every, "speed": e.speed, "replan_missed": e.replan_missed, "blend": e.blend,
            "lookahead": e.lookahead, "plan_velocity": e.plan_velocity}


def plan_times_ms(planner: Planner, obs, goal, repeats: int = 50, warmup: int = 5) -> np.ndarray:
    """Wall times (ms) of `repeats` `plan` calls, after a few warm-up calls."""
    for _ in range(warmup):
        planner.plan(obs, goal)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        planner.plan(obs, goal)
        times.append(time.perf_counter() - t0)
    return 1000.0 * np.asarray(times)


def plan_latency_ms(planner: Planner, obs, goal, repeats: int = 50, warmup: int = 5) -> float:
    """Median wall time of one `plan` call (ms)."""
    return float(np.median(plan_times_ms(planner, obs, goal, repeats, warmup)))


def evaluate_planner(net, normalizer, e: RolloutConfig, env_name: str, mode: str, episodes: int = 100,
                     seed: int = 0, out: Path | None = None, progress: bool = True) -> dict:
    """Score `episodes` rollouts in `env_name` (under eval's disturbances, if any); write plots under
    `out` (results.json is the caller's).

    `network_calls_per_env_step` counts batched forward passes of the network: a plan costs
    `evaluations_per_plan` of them whatever its candidates (drawn in one batch)."""
    disturbances = Disturbances.of(e)
    env = make_maze2d(env_name)
    planner = make_planner(net, normalizer, e, mode, env.layout, seed=seed)
    goal = episode_goal(e, env.layout, seed)
    if goal is not None:
        env.reset(seed=seed, options={"goal": tuple(goal)})  # a goal in a wall or outside: UserError now
    runner = DisturbedEnv(env, disturbances)  # undisturbed: the env's own steps, bit for bit
    eps, pushes, refused = [], 0, 0
    t0 = time.perf_counter()
    for i in tracked(range(episodes), f"rollouts {env_name}", episodes, progress):
        eps.append(run_episode(runner, planner, seed=seed + i, goal=episode_goal(e, env.layout, seed + i),
                               **execution_options(e)))
        pushes, refused = pushes + runner.pushes, refused + runner.refused
    wall = time.perf_counter() - t0
    scores = np.array([e.score for e in eps])
    plans = sum(len(e.plan_seconds) for e in eps)
    env_steps = sum(len(e.path) - 1 for e in eps)
    obs, _ = env.reset(seed=seed, options={"goal": tuple(goal)} if goal is not None else None)
    single = make_planner(net, normalizer, e, mode, env.layout, candidates=1, seed=seed)
    results = {
        "env": env_name,
        "episodes": episodes,
        "seed": seed,
        "score_mean": float(scores.mean()),
        "score_se": float(scores.std(ddof=1) / np.sqrt(len(scores))) if len(scores) > 1 else 0.0,
        "success_rate": float(np.mean([e.success for e in eps])),
        "evaluations_per_plan": planner.settings.steps,
        "candidates": planner.settings.candidates,
        "goals": e.goals,
        "replan_every": e.replan_every,
        "replan_missed": e.replan_missed,
        "speed": e.speed,
        "lookahead": e.lookahead,
        "plan_velocity": e.plan_velocity,
        "smooth": e.smooth,
        "smooth_start": e.smooth_start,
        "replan_select": e.replan_select,
        "fixed_noise": e.fixed_noise,
        "replan_goal_step": e.replan_goal_step,
        "blend": e.blend,
        "disturbances": {**asdict(disturbances), "pushes_per_episode": pushes / episodes, "pushes_refused": refused},
        "plans_per_episode": plans / episodes,
        "network_calls_per_env_step": plans * planner.settings.steps / env_steps,
        "plan_seconds_per_episode": float(np.mean([sum(e.plan_seconds) for e in eps])),
        "plan_latency_ms_batch1": plan_latency_ms(single, obs, env.goal, e.latency_repeats),
        "plan_latency_ms": 1000.0 * float(np.median(np.concatenate([e.plan_seconds for e in eps]))),
        "rollout_wall_s": wall,
        "threads": torch.get_num_threads(),
    }
    if out is not None and e.plots > 0:
        Path(out).mkdir(parents=True, exist_ok=True)
        plot_episodes(env.layout, eps[: e.plots], Path(out), env_name)
        np.savez_compressed(Path(out) / "scores.npz", scores=scores, seeds=seed + np.arange(episodes),
                            goals=np.stack([np.asarray(e.goal, dtype=np.float64) for e in eps]),
                            starts=np.stack([e.path[0, :2] for e in eps]))
    return results


def plot_episodes(layout, episodes, out: Path, title: str) -> None:
    """rollouts.png: the path of each episode over its first plan; plans.png: first plans with candidates."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    n = len(episodes)
    for name, draw in (("rollouts.png", _draw_rollout), ("plans.png", _draw_plans)):
        fig, axes = plt.subplots(1, n, figsize=(3.0 * n, 3.2), squeeze=False)
        for ax, ep in zip(axes[0], episodes, strict=True):
            draw(layout, ep, ax)
        fig.suptitle(f"{title}: {name[:-4]}")
        fig.tight_layout()
        with atomic_path(out / name, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=100)
        plt.close(fig)


def _draw_rollout(layout, ep, ax) -> None:
    lines, labels = [ep.path], ["rollout"]
    if ep.plans:
        lines.insert(0, ep.plans[0][1].states)
        labels.insert(0, "first plan")
    plot_maze(layout, lines=lines, labels=labels, start=ep.path[0], goal=ep.goal, ax=ax,
              title=f"score {ep.score:.0f}")


def _draw_plans(layout, ep, ax) -> None:
    if not ep.plans:
        return
    plan = ep.plans[0][1]
    for k, cand in enumerate(plan.candidates):
        if k != plan.chosen:
            ax.plot(cand[:, 1], cand[:, 0], "-", lw=0.6, color="0.6", alpha=0.6)
    plot_maze(layout, lines=[plan.states], labels=["chosen"], start=plan.states[0], goal=ep.goal, ax=ax,
              title=f"{len(plan.candidates)} candidates")

