"""Post-filters for generated time series.

One-step samples carry a little high-frequency noise that a distance between whole windows barely
sees but a robot would (benchmarks/motion_smoothness.py measures it). A Savitzky-Golay filter
fits a low-order polynomial to every `window` consecutive steps and keeps its value at the
centre, so it removes step-to-step jitter while keeping slopes and curvature that span the window;
at the ends it evaluates the first/last window's fit (no padding, no shrinkage towards zero).
"""

from __future__ import annotations

import torch

from .errors import UserError


def savgol_matrix(window: int, order: int) -> torch.Tensor:
    """(window, window) P with P @ y = the least-squares polynomial fit of degree `order` to y,
    evaluated at each of the window's positions."""
    pos = torch.arange(window, dtype=torch.float64) - window // 2
    vander = pos[:, None] ** torch.arange(order + 1, dtype=torch.float64)
    return vander @ torch.linalg.pinv(vander)


def savgol(x: torch.Tensor, window: int, order: int = 3) -> torch.Tensor:
    """Smooth (N, H, D) along H with a Savitzky-Golay filter of odd `window` > order + 1 and
    polynomial `order`; same shape. (A window of order + 1 steps or fewer would fit every point
    exactly and change nothing, so it is refused rather than silently ignored.)"""

    if window < 1 or window % 2 == 0:
        raise UserError(f"the smoothing window must be an odd number of steps, got {window}")
    if window <= order + 1:
        raise UserError(f"a smoothing window of {window} steps is a no-op for a degree-{order} fit; use "
                        f"{order + 2 + (order + 1) % 2} steps or more")
    if x.shape[1] < window:
        raise UserError(f"the smoothing window ({window} steps) is longer than the windows ({x.shape[1]} steps)")
    p = savgol_matrix(window, order).to(x.dtype)
    h = window // 2
    frames = x.transpose(1, 2).unfold(-1, window, 1)  # (N, D, H - window + 1, window)
    middle = frames @ p[h]
    head = frames[..., 0, :] @ p[:h].T
    tail = frames[..., -1, :] @ p[h + 1:].T
    return torch.cat([head, middle, tail], dim=-1).transpose(1, 2)
