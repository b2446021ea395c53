"""How far a fresh plan's first steps go, against how far the agent goes, along the default
protocol's paths: what every-step re-planning tracks (a new plan's state 1) against what the
default protocol does (issue 31's question of why re-planning every step scores lower).

    python benchmarks/maze2d_plan_first_step.py RUN --episodes 20 --seed 30000 --every 10

Plays `--episodes` episodes of the run's default protocol; every `--every` env steps until the
goal is reached, draws two fresh plans (planners of their own, seeded apart) from the visited
state and compares the first one's first step, and its first two steps' mean, with the agent's
next step (x, y distance), and the directions of the two plans' first two steps with each other
and with the agent's next two steps (angles in degrees). One thread.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from mmftraj.envs import make_maze2d
from mmftraj.planning import run_episode
from mmftraj.planning.rollouts import make_planner
from mmftraj.tasks.maze2d import load_model


def angle(a: np.ndarray, b: np.ndarray) -> float:
    """Degrees between two (2,) vectors."""
    cos = float(a @ b / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12))
    return float(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="a maze2d run folder (a mean-flow model)")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=30000, help="the first episode's seed")
    parser.add_argument("--every", type=int, default=10, help="env steps between probes")
    args = parser.parse_args()
    torch.set_num_threads(1)
    net, cfg, normalizer = load_model(args.run)
    env = make_maze2d(cfg.eval.env or cfg.data.env)
    planner = make_planner(net, normalizer, cfg.eval, "mean", env.layout, seed=0)
    probe = make_planner(net, normalizer, cfg.eval, "mean", env.layout, seed=1)
    other = make_planner(net, normalizer, cfg.eval, "mean", env.layout, seed=2)
    agent, first, first_two, between, against = [], [], [], [], []
    for seed in range(args.seed, args.seed + args.episodes):
        ep = run_episode(env, planner, seed=seed, replan_missed=cfg.eval.replan_missed)
        for t in range(0, len(ep.path) - 1, args.every):
            x = ep.path[t]
            if np.linalg.norm(x[:2] - ep.goal) < cfg.eval.goal_radius:
                break
            states, second = probe.plan(x, ep.goal).states, other.plan(x, ep.goal).states
            agent.append(np.linalg.norm(ep.path[t + 1, :2] - x[:2]))
            first.append(np.linalg.norm(states[1, :2] - x[:2]))
            first_two.append(np.linalg.norm(states[2, :2] - x[:2]) / 2)
            step = states[2, :2] - x[:2]
            between.append(angle(step, second[2, :2] - x[:2]))
            if t + 2 < len(ep.path):
                against.append(angle(step, ep.path[t + 2, :2] - x[:2]))
    print(f"{len(agent)} states probed; mean step length (x, y): the agent on the default protocol "
          f"{np.mean(agent):.4f}, a fresh plan's first step {np.mean(first):.4f}, its first two steps' mean "
          f"{np.mean(first_two):.4f}; angle between two fresh plans' first two steps: median "
          f"{np.median(between):.0f}°, between a fresh plan's and the agent's next two: median "
          f"{np.median(against):.0f}°")


if __name__ == "__main__":
    main()
