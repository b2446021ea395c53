"""Receding-horizon control with action chunks, as Diffusion Policy executes its policies.

Every `action_steps` env steps the policy maps the last `obs_steps` observations to a chunk of
`horizon` actions with one call of a conditional generator (one network evaluation by default),
and the first `action_steps` of them are executed. At reset the history repeats the first
observation. Task-agnostic: the envs, the observation function and the networks are passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np
import torch

from ..core import sample


class ChunkPolicy:
    """Observation histories (B, k, obs_dim) → action chunks (B, H, act_dim) in env units.

    `net(z, r, t, cond)` is a generator over normalized chunks (B, H, act_dim), conditioned on the
    normalized, flattened history; `steps` network evaluations per chunk (`mode` as in
    mmftraj.core.sample). Noise comes from its own generator, so a rollout is reproducible."""

    def __init__(self, net, obs_norm, act_norm, horizon: int, act_dim: int, steps: int = 1, mode: str = "mean",
                 seed: int = 0):
        self.net, self.obs_norm, self.act_norm = net.eval(), obs_norm, act_norm
        self.horizon, self.act_dim, self.steps, self.mode = horizon, act_dim, steps, mode
        self.generator = torch.Generator().manual_seed(seed)

    @torch.no_grad()
    def __call__(self, history: np.ndarray) -> np.ndarray:
        obs = self.obs_norm.normalize(torch.as_tensor(np.asarray(history), dtype=torch.float32))
        cond = obs.reshape(len(obs), -1)
        noise = torch.randn(len(obs), self.horizon, self.act_dim, generator=self.generator)
        chunk = sample(self.net, noise, self.steps, self.mode, cond=cond)
        return self.act_norm.unnormalize(chunk).numpy()


def run_chunked(envs, policy: Callable[[np.ndarray], np.ndarray], starts: np.ndarray,
                observe: Callable[[np.ndarray], np.ndarray], obs_steps: int, action_steps: int,
                on_chunk: Callable[[int], None] | None = None) -> dict:
    """Run every env of `envs` (reset(starts) → states, step(actions) → states, `.done`) to its end
    under receding-horizon control; returns counts and the time spent in the policy."""
    state = envs.reset(starts)
    history = np.repeat(observe(state)[:, None], obs_steps, axis=1)
    chunks, policy_s = 0, 0.0
    while not envs.done.all():
        t0 = time.perf_counter()
        actions = policy(history)
        policy_s += time.perf_counter() - t0
        chunks += 1
        for j in range(action_steps):
            state = envs.step(actions[:, j])
            history = np.concatenate([history[:, 1:], observe(state)[:, None]], axis=1)
            if envs.done.all():
                break
        if on_chunk is not None:
            on_chunk(chunks)
    return {"chunks": chunks, "policy_s": policy_s}


def chunk_times_ms(policy: ChunkPolicy, obs_steps: int, obs_dim: int, repeats: int = 50,
                   warmup: int = 5) -> np.ndarray:
    """Milliseconds of `repeats` chunks at batch 1 after `warmup` (the control loop's cost per re-plan)."""
    history = np.zeros((1, obs_steps, obs_dim))
    history[:] = policy.obs_norm.shift
    for _ in range(warmup):
        policy(history)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        policy(history)
        times.append(1e3 * (time.perf_counter() - t0))
    return np.array(times)


def chunk_latency_ms(policy: ChunkPolicy, obs_steps: int, obs_dim: int, repeats: int = 50, warmup: int = 5) -> float:
    """Median milliseconds for one chunk at batch 1."""
    return float(np.median(chunk_times_ms(policy, obs_steps, obs_dim, repeats, warmup)))
