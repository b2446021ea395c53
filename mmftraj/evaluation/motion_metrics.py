"""Scores of generated trajectory windows against data windows: a distance between whole windows,
the step-to-step jitter that distance barely sees, and the share of windows in a speed band.

Windows are (N, H, D) tensors in normalized units, as a WindowDataset batches them.
"""

from __future__ import annotations

import torch

from ..data.speed import in_band, window_speeds
from .distances import sliced_wasserstein


def window_distance(a: torch.Tensor, b: torch.Tensor, projections: int) -> float:
    """Sliced Wasserstein distance between two equally sized sets of windows (N, H, D), flattened,
    with fixed projections (seed 0): every call of one evaluation projects the same way."""
    return sliced_wasserstein(a.flatten(1), b.flatten(1), projections, torch.Generator().manual_seed(0))


def roughness(windows: torch.Tensor) -> float:
    """Mean squared second difference along time of windows (N, H, D), in normalized units: the
    step-to-step jitter a distance between whole windows barely sees (compare with the data's)."""
    return float(windows.diff(n=2, dim=1).pow(2).mean())


def band_shares(windows, panels: dict[str, torch.Tensor], band: list[float]) -> dict[str, float]:
    """Share of each panel's windows (normalized, (N, H, D), of the WindowDataset `windows`' table)
    whose planar speed lies in the closed band [lo, hi]."""
    return {label: float(in_band(window_speeds(windows, x), band).mean()) for label, x in panels.items()}
