"""Samplers: one network evaluation (x = ε - u(ε, 0, 1)) or k steps on any time grid.

`mean` mode jumps with the average velocity, z_s = z_t - (t - s)·u(z_t, s, t); `euler` mode is
the flow-matching ODE solver, z_s = z_t - (t - s)·u(z_t, t, t) (u(z, t, t) is the velocity).
"""

from __future__ import annotations

import torch

from ..errors import UserError, choice_error
from .objective import check_output

MODES = ("mean", "euler")


def time_grid(steps: int, device="cpu", dtype=torch.float32) -> torch.Tensor:
    """Uniform grid from t = 1 (noise) down to t = 0 (data), `steps + 1` points."""
    if steps < 1:
        raise UserError(f"the number of sampling steps must be at least 1, got {steps}")
    return torch.linspace(1.0, 0.0, steps + 1, device=device, dtype=dtype)


@torch.no_grad()
def sample(model, noise: torch.Tensor, steps: int = 1, mode: str = "mean", grid: torch.Tensor | None = None, **cond):
    """Map noise to data with `steps` network evaluations (or along a given decreasing grid)."""
    if mode not in MODES:
        raise choice_error("sampling mode", mode, MODES)
    grid = time_grid(steps, noise.device, noise.dtype) if grid is None else grid.to(noise.device, noise.dtype)
    if grid.dim() != 1 or grid.numel() < 2 or bool((grid[1:] >= grid[:-1]).any()):
        raise UserError("a sampling grid must be a strictly decreasing 1-D sequence of times")
    z = noise
    n = noise.shape[0]
    shape = (n,) + (1,) * (noise.dim() - 1)
    for t_hi, t_lo in zip(grid[:-1], grid[1:], strict=True):
        t = t_hi.expand(n)
        r = t_lo.expand(n) if mode == "mean" else t
        z = z - (t_hi - t_lo).reshape(()).expand(shape) * check_output(model(z, r, t, **cond), z)
    return z
