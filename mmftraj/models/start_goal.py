"""Start-goal conditioning for a trajectory network: the same transformer asked for a plan from
here to there either by inpainting (pin the first observation and the last position in its input,
zero its velocity there, as Diffuser does), by a conditioning vector every token sees, or both.
The training batches that teach it this conditioning are built here too (`training_batches`), beside
the keys and the loss mask they must match.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import choice_error

CONDITIONINGS = ("inpaint", "vector", "both")


class StartGoalNet(nn.Module):
    """u(z, r, t, start, goal[, goal_index]) over (B, H, obs_dim) windows; start (B, obs_dim),
    goal (B, goal_dim), goal_index (B,) the step at which the plan is at the goal (default H - 1).

    The goal is a position (the first `goal_dim` observation entries): a target has no velocity
    in the data (the expert never stops), so only where to be is asked for. With `goal_anywhere`
    the network is also told the goal's step (trained on random steps), so a planner can ask for
    short plans to near goals instead of H-step detours the data never shows.
    """

    def __init__(self, net: nn.Module, obs_dim: int = 4, goal_dim: int = 2, conditioning: str = "both",
                 goal_anywhere: bool = False):
        super().__init__()
        if conditioning not in CONDITIONINGS:
            raise choice_error("conditioning", conditioning, CONDITIONINGS)
        self.net = net
        self.obs_dim, self.goal_dim, self.conditioning = obs_dim, goal_dim, conditioning
        self.goal_anywhere = goal_anywhere
        self.inpaint = conditioning in ("inpaint", "both")
        self.vector = conditioning in ("vector", "both")
        goal_entries = torch.zeros(obs_dim)
        goal_entries[:goal_dim] = 1.0
        self.register_buffer("goal_entries", goal_entries, persistent=False)

    @property
    def horizon(self) -> int:
        return self.net.cfg.horizon

    def _index(self, goal_index, n: int, device) -> torch.Tensor:
        if goal_index is None:
            return torch.full((n,), self.horizon - 1, dtype=torch.long, device=device)
        return goal_index.to(device=device, dtype=torch.long)

    def pinned(self, n: int, goal_index=None, device=None, dtype=torch.float32) -> torch.Tensor:
        """(n, H, obs_dim) 0/1 mask of the entries inpainting fixes (start row, goal position)."""
        if device is None:
            device = goal_index.device if goal_index is not None else self.goal_entries.device
        idx = self._index(goal_index, n, device)
        steps = torch.arange(self.horizon, device=device)
        goal_rows = (steps[None] == idx[:, None]).to(dtype)[..., None] * self.goal_entries.to(device, dtype)
        start_row = (steps == 0).to(dtype)[None, :, None].expand(n, -1, self.obs_dim)
        return torch.maximum(start_row, goal_rows)

    def pinned_values(self, start: torch.Tensor, goal: torch.Tensor, goal_index=None) -> torch.Tensor:
        """(B, H, obs_dim) tensor holding start at step 0 and goal at its step (zeros elsewhere)."""
        n = start.shape[0]
        idx = self._index(goal_index, n, start.device)
        values = torch.zeros(n, self.horizon, self.obs_dim, dtype=start.dtype, device=start.device)
        values[torch.arange(n, device=start.device), idx, : self.goal_dim] = goal
        values[:, 0] = start
        return values

    def loss_mask(self, n: int = 1, goal_index=None) -> torch.Tensor:
        """(n, H, obs_dim): 0 on pinned entries (their velocity is fixed at 0, nothing to learn)."""
        if not self.inpaint:
            return torch.ones(n, self.horizon, self.obs_dim)
        return 1.0 - self.pinned(n, goal_index)

    def forward(self, z, r, t, start, goal, goal_index=None):
        n = z.shape[0]
        cond = None
        if self.vector:
            parts = [start, goal]
            if self.goal_anywhere:
                idx = self._index(goal_index, n, z.device)
                parts.append((idx.to(z.dtype) / (self.horizon - 1))[:, None])
            cond = torch.cat(parts, dim=-1)
        if self.inpaint:
            keep = 1.0 - self.pinned(n, goal_index, z.device, z.dtype)
            values = self.pinned_values(start.to(z.dtype), goal.to(z.dtype), goal_index)
            return self.net(z * keep + values * (1.0 - keep), r, t, cond) * keep
        return self.net(z, r, t, cond)


def training_batches(net: StartGoalNet, windows, batch_size: int):
    """A Trainer's batch function for `net`: `batch_size` windows (`windows.sample(n, generator)`,
    whose `.trajectories` begin with the observations) with their first observation as start and
    their last position as goal, or with `goal_anywhere` the position at a random step from
    horizon/8 on (and that step), plus the loss mask of the pinned entries when inpainting."""
    h = net.horizon
    fixed_mask = net.loss_mask() if net.inpaint and not net.goal_anywhere else None

    def batch_fn(generator: torch.Generator, step: int) -> dict:
        x = windows.sample(batch_size, generator).trajectories[..., : net.obs_dim]
        if net.goal_anywhere:
            idx = torch.randint(max(1, h // 8), h, (batch_size,), generator=generator)
            goal = x[torch.arange(batch_size), idx, : net.goal_dim].clone()
            batch = {"x": x, "cond": {"start": x[:, 0].clone(), "goal": goal, "goal_index": idx}}
            if net.inpaint:
                batch["loss_mask"] = net.loss_mask(batch_size, idx)
            return batch
        batch = {"x": x, "cond": {"start": x[:, 0].clone(), "goal": x[:, -1, : net.goal_dim].clone()}}
        if fixed_mask is not None:
            batch["loss_mask"] = fixed_mask
        return batch

    return batch_fn
