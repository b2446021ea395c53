"""Time per action chunk on Push-T: one network evaluation (a one-step policy) beside 10 and 100
(what a diffusion policy pays), at batch 1 on one thread, and the control rate each allows.

    python benchmarks/pusht_latency.py                              # the default model, untrained weights
    python benchmarks/pusht_latency.py --checkpoint runs/pusht/RUN --json benchmarks/records/pusht/latency.json

Latency does not depend on the weights, so without a checkpoint the default model is timed at
initialisation (its zero-initialised output layers randomised so the sampler does real work). A
chunk is the whole `ChunkPolicy` call: normalisation, noise, k evaluations, unnormalisation. The
executor draws a chunk every `eval.action_steps` env steps (8 at 10 Hz), so a policy whose chunk
takes L seconds can supply at most action_steps / L actions per second.
"""

from __future__ import annotations

import argparse
import json
import os
import platform

import numpy as np
import torch

from mmftraj.core import ModularMeanFlow
from mmftraj.data import Normalizer
from mmftraj.envs.pusht import OBS_DIM
from mmftraj.io import atomic_write_text
from mmftraj.planning.chunks import ChunkPolicy, chunk_times_ms
from mmftraj.tasks import pusht


def policy_parts(checkpoint: str | None):
    if checkpoint:
        return pusht.load_policy(checkpoint)
    cfg = pusht.Config()
    torch.manual_seed(0)
    net = pusht.build_model(cfg).eval()
    with torch.no_grad():
        for p in net.parameters():
            if p.abs().sum() == 0:
                p.normal_(0, 0.02)
    obs = Normalizer("limits", np.full(OBS_DIM, 256.0), np.full(OBS_DIM, 256.0))
    act = Normalizer("limits", [256.0, 256.0], [256.0, 256.0])
    return net, cfg, obs, act


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", default=None, help="a pusht run or checkpoint (default: untrained weights)")
    parser.add_argument("--steps", type=int, nargs="+", default=[1, 10, 100], help="network evaluations per chunk")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=200,
                        help="timed chunks for one evaluation; k evaluations get repeats / k (at least 10)")
    parser.add_argument("--json", default=None, help="write the measurements to this file")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    net, cfg, obs_norm, act_norm = policy_parts(args.checkpoint)
    mode = ModularMeanFlow(cfg.objective).sampling_mode
    rows = {}
    for k in args.steps:
        policy = ChunkPolicy(net, obs_norm, act_norm, cfg.data.horizon, pusht.ACT_DIM, k, mode)
        t = chunk_times_ms(policy, cfg.data.obs_steps, OBS_DIM, max(10, args.repeats // k))
        rows[k] = {"median_ms": float(np.median(t)), "min_ms": float(t.min()),
                   "chunks_per_s": 1e3 / float(np.median(t)),
                   "actions_per_s": cfg.eval.action_steps * 1e3 / float(np.median(t))}
        print(f"{k:4d} evaluations per chunk: {rows[k]['median_ms']:8.2f} ms median "
              f"({rows[k]['min_ms']:.2f} ms fastest); "
              f"{rows[k]['chunks_per_s']:8.1f} chunks/s, {rows[k]['actions_per_s']:8.0f} actions/s "
              f"at {cfg.eval.action_steps} actions per chunk")
    record = {"checkpoint": args.checkpoint, "threads": args.threads, "batch": 1, "horizon": cfg.data.horizon,
              "model": {"width": cfg.model.width, "depth": cfg.model.depth,
                        "parameters": sum(p.numel() for p in net.parameters())},
              "cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
              "load_1min": os.getloadavg()[0], "rows": rows}
    if args.json:
        atomic_write_text(args.json, json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
    main()
