"""Plan in a maze with a trained checkpoint: one network evaluation per plan, tracked by Diffuser's
controller, re-planned when a plan runs out away from the goal. Copy it and change what you need.

    mmftraj train --task maze2d                      # about 15 minutes on a laptop CPU
    python examples/plan_maze2d.py runs/maze2d/mmf-umaze-s0 --episodes 5 --out plans.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mmftraj.core import ModularMeanFlow
from mmftraj.envs import make_maze2d, plot_maze
from mmftraj.evaluation.figures import pyplot, save_png
from mmftraj.planning import Planner, run_episode
from mmftraj.tasks.maze2d import load_model


def main(checkpoint: str, episodes: int = 5, seed: int = 0, out: str | None = None) -> list[float]:
    net, cfg, normalizer = load_model(checkpoint)  # the EMA weights, the run's config and normalizer
    env = make_maze2d(cfg.data.env)
    planner = Planner(net, normalizer, steps=1, mode=ModularMeanFlow(cfg.objective).sampling_mode,
                      layout=env.layout, smooth=cfg.eval.smooth, seed=seed)
    runs = [run_episode(env, planner, seed=seed + i, replan_missed=True) for i in range(episodes)]
    for i, ep in enumerate(runs):
        print(f"episode {i}: score {ep.score:6.1f}, {len(ep.plan_seconds)} plans, "
              f"{1e3 * np.median(ep.plan_seconds):.1f} ms per plan")
    if out:
        plt = pyplot()
        fig, axes = plt.subplots(1, episodes, figsize=(3 * episodes, 3), squeeze=False)
        for ax, ep in zip(axes[0], runs, strict=True):
            plot_maze(env.layout, lines=[ep.plans[0][1].states[:, :2], ep.path[:, :2]], labels=["first plan", "path"],
                      start=ep.path[0, :2], goal=ep.goal, ax=ax)
        save_png(fig, Path(out))
        print(f"wrote {out}")
    return [ep.score for ep in runs]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a maze2d run folder or one of its checkpoints/step_* folders")
    parser.add_argument("--episodes", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="a PNG of each episode's first plan and path")
    args = parser.parse_args()
    main(args.checkpoint, args.episodes, args.seed, args.out)
