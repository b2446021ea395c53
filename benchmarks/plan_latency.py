"""Time per plan on maze2d: k network evaluations (1 for MMF, more for an fm/Euler planner) at
batch 1 and with a batch of candidates, for each maze preset's model.

    python benchmarks/plan_latency.py                          # all mazes, k = 1 2 4 8 16, untrained weights
    python benchmarks/plan_latency.py --checkpoint runs/maze2d/RUN --steps 1 16
    python benchmarks/plan_latency.py --maze large --threads 1 --json out.json
    python benchmarks/plan_latency.py --threads 1 --steps 1 --every-step   # + one every-step episode per maze

Latency does not depend on the weights, so without a checkpoint the preset's model is timed at
initialisation (its output layers are randomised so the sampler does real work). Times are the median and the
minimum of `--repeats` full `Planner.plan` calls (normalisation, sampling, selection) after warm-up.
"""

from __future__ import annotations

import argparse
import json
import os
import platform

import numpy as np
import torch

from mmftraj.envs import make_maze2d
from mmftraj.planning import Planner, PlanSettings, run_episode
from mmftraj.planning.rollouts import plan_times_ms
from mmftraj.run_request import resolve_config
from mmftraj.tasks import maze2d as M


def preset_planner_parts(maze: str):
    _, cfg = resolve_config("maze2d", maze)
    torch.manual_seed(0)
    net = M.build_model(cfg).eval()
    with torch.no_grad():
        for p in net.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.02)
    from mmftraj.data import Normalizer

    norm = Normalizer("limits", [4.0, 5.0, 0.0, 0.0], [4.0, 5.0, 5.0, 5.0])
    return net, cfg, norm


def median_and_min_ms(planner: Planner, obs, goal, repeats: int) -> tuple[float, float]:
    """(median, min) ms of `repeats` plan calls after warm-up; on a shared CPU the minimum is the
    better estimate of the unloaded time (as timeit reports)."""
    times = plan_times_ms(planner, obs, goal, repeats=repeats, warmup=5)
    return float(np.median(times)), float(np.min(times))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--maze", nargs="*", default=["umaze", "medium", "large"])
    ap.add_argument("--checkpoint", default=None, help="time this run's model instead of the presets")
    ap.add_argument("--steps", nargs="*", type=int, default=[1, 2, 4, 8, 16])
    ap.add_argument("--candidates", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--threads", type=int, default=0, help="torch intra-op threads (0: torch default)")
    ap.add_argument("--json", default=None)
    ap.add_argument("--every-step", action="store_true",
                    help="also run one full episode per maze replanning at every env step (the preset's planner, "
                         "k = the first --steps, one candidate) and report its total planning seconds")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    parts = [M.load_model(args.checkpoint)] if args.checkpoint else [preset_planner_parts(m) for m in args.maze]
    rows = []
    for net, cfg, norm in parts:
        env = make_maze2d(cfg.data.env)
        obs, info = env.reset(seed=0)
        for k in args.steps:
            for n in sorted({1, args.candidates}):
                planner = Planner(net, norm, steps=k, candidates=n, selection="earliest", layout=env.layout)
                ms, best = median_and_min_ms(planner, obs, info["goal"], args.repeats)
                rows.append({"env": cfg.data.env, "horizon": cfg.data.horizon,
                             "tokens": cfg.data.horizon // cfg.model.patch,
                             "steps": k, "candidates": n, "median_ms": round(ms, 3), "min_ms": round(best, 3)})
                print(f"{cfg.data.env:18s} H={cfg.data.horizon:3d} k={k:2d} batch={n:2d}  median {ms:8.2f} ms"
                      f"  min {best:8.2f} ms", flush=True)
    episodes = []
    for net, cfg, norm in parts if args.every_step else []:
        env = make_maze2d(cfg.data.env)
        e = cfg.eval
        planner = Planner(net, norm, PlanSettings.of(e, mode="mean", steps=args.steps[0], candidates=1),
                          layout=env.layout)
        ep = run_episode(env, planner, replan_every=1, seed=0, keep_plans=0, speed=e.speed)
        episodes.append({"env": cfg.data.env, "plans": len(ep.plan_seconds), "steps": env.max_episode_steps,
                         "planning_s": round(float(np.sum(ep.plan_seconds)), 3),
                         "per_plan_ms": round(1000 * float(np.mean(ep.plan_seconds)), 3)})
        print(f"{cfg.data.env:18s} every-step episode: {episodes[-1]['plans']} plans in "
              f"{episodes[-1]['planning_s']:.2f} s ({episodes[-1]['per_plan_ms']:.2f} ms a plan)", flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    info = {"load_avg_1min": load, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu": platform.processor() or platform.machine(),
            "parameters": int(sum(p.numel() for p in parts[0][0].parameters()))}
    print(json.dumps(info))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"info": info, "rows": rows, "every_step_episodes": episodes}, f, indent=1)


if __name__ == "__main__":
    main()
