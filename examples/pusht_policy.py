"""Run a trained Push-T policy in gym-pusht: every 8 env steps one network evaluation draws the
next 16 actions from the last 2 observations. Copy it and change what you need.

    mmftraj train --task pusht
    python examples/pusht_policy.py runs/pusht/mmf-s0 --episodes 4 --out pusht.gif
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from mmftraj.core import ModularMeanFlow
from mmftraj.envs.pusht import PushTBatch, dp_start, observe
from mmftraj.errors import UserError
from mmftraj.evaluation.frames import save_gif
from mmftraj.planning.chunks import ChunkPolicy, run_chunked
from mmftraj.tasks.pusht import ACT_DIM, load_policy


def main(checkpoint: str, episodes: int = 4, first_seed: int = 100000, out: str | None = None) -> np.ndarray:
    net, cfg, obs_norm, act_norm = load_policy(checkpoint)  # EMA weights, config, normalizers
    policy = ChunkPolicy(net, obs_norm, act_norm, cfg.data.horizon, ACT_DIM, steps=1,
                         mode=ModularMeanFlow(cfg.objective).sampling_mode)
    envs = PushTBatch(episodes, render=episodes if out else 0)
    starts = np.stack([dp_start(first_seed + i) for i in range(episodes)])  # Diffusion Policy's test starts
    run_chunked(envs, policy, starts, observe, cfg.data.obs_steps, cfg.eval.action_steps)
    envs.close()
    for i in range(episodes):
        print(f"seed {first_seed + i}: best coverage reward {envs.best[i]:.3f}, {envs.steps[i]} steps, "
              f"{'success' if envs.success[i] else 'no success'}")
    print(f"score (mean of each episode's best reward): {envs.best.mean():.3f}")
    if out:
        save_gif(envs.frames, Path(out))
        print(f"wrote {out}")
    return envs.best


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkpoint", help="a pusht run folder or one of its checkpoints/step_* folders")
    parser.add_argument("--episodes", type=int, default=4)
    parser.add_argument("--first-seed", type=int, default=100000)
    parser.add_argument("--out", default=None, help="an animated GIF of the episodes side by side")
    args = parser.parse_args()
    if args.episodes < 1:
        parser.error("--episodes must be at least 1")
    try:
        main(args.checkpoint, args.episodes, args.first_seed, args.out)
    except UserError as exc:  # a missing or wrong checkpoint: one line, as the mmftraj command says it
        raise SystemExit(f"error: {exc}") from None
