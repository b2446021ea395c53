"""Distances between sample sets, for judging generators against fresh data."""

from __future__ import annotations

import torch


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, projections: int = 256, generator=None) -> float:
    """Sliced 2-Wasserstein distance between two equally sized point clouds (N, D).

    Each random direction reduces the problem to 1-D, where optimal transport sorts both sides.
    """
    if a.shape != b.shape:
        raise ValueError(f"sample sets must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    dirs = torch.randn(a.shape[1], projections, generator=generator, dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=0, keepdim=True)
    pa = torch.sort(a.double() @ dirs, dim=0).values
    pb = torch.sort(b.double() @ dirs, dim=0).values
    return float(((pa - pb) ** 2).mean().sqrt())
