"""A hand-built planner network for tests: its one-step plan is a known trajectory."""

import torch
from torch import nn


class StraightLine(nn.Module):
    """u with ε - u(ε, 0, 1) = a constant-speed straight line from start to goal (velocities
    consistent with the env's 0.01 s step, as the tracking controller expects)."""

    def __init__(self, horizon: int = 64):
        super().__init__()
        self.horizon, self.obs_dim, self.goal_dim, self.inpaint, self.goal_anywhere = horizon, 4, 2, False, False

    def forward(self, z, r, t, start, goal):
        s = torch.linspace(0, 1, self.horizon)[None, :, None]
        xy = (1 - s) * start[:, None, :2] + s * goal[:, None]
        vel = ((goal - start[:, :2]) / ((self.horizon - 1) * 0.01))[:, None].expand_as(xy)
        return z - torch.cat([xy, vel], -1)
