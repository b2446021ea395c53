"""Planar speed of trajectory windows and episodes: what a held-out speed band is measured in, both
when the band is taken out of the training episodes (mmftraj.data.motion) and when the evaluation
reports the share of samples in it (mmftraj.evaluation.motion_metrics)."""

from __future__ import annotations

import numpy as np
import torch


def time_step(store) -> float:
    """The median time between consecutive rows of an EpisodeStore's episodes; 1 where its time
    (extras["time"]) is missing or not numeric."""
    try:
        time = np.asarray(store.extras["time"], dtype=np.float64)
    except (KeyError, TypeError, ValueError):
        return 1.0
    steps = np.concatenate([np.diff(time[s:e]) for s, e in zip(store.starts, store.ends, strict=True)])
    steps = steps[np.isfinite(steps) & (steps > 0)]
    return float(np.median(steps)) if len(steps) else 1.0


def quarter_chord(steps: int) -> int:
    """The default speed chord of a `steps`-long window: a quarter of it, at least one step."""
    return max(1, (steps - 1) // 4)


def planar_speed(states: np.ndarray, dt: float, chord: int | None = None) -> np.ndarray:
    """Mean speed (N,) of N windows (N, T, D ≥ 2) in the plane of their first two state columns,
    over chords of `chord` steps (default: a quarter of the window). Step-to-step jitter in
    generated positions would add its own speed to a step-by-step path length (chord 1 reads
    one-step `mmf` samples at a median 5.5-8.8 m/s against the data's 1.6;
    benchmarks/records/motion_smoothness/), while a quarter-window chord still follows slow turns."""
    k = chord or quarter_chord(states.shape[-2])
    xy = states[..., :2]
    return np.linalg.norm(xy[..., k:, :] - xy[..., :-k, :], axis=-1).mean(-1) / (k * dt)


def window_speeds(windows, x: torch.Tensor, chord: int | None = None) -> np.ndarray:
    """Planar speeds (N,) of normalized windows x (N, H, D) of a WindowDataset's table."""
    return planar_speed(windows.unnormalize(x.numpy()), time_step(windows.store), chord)


def in_band(speeds: np.ndarray, band: list[float]) -> np.ndarray:
    """Which speeds lie in the closed band [lo, hi]."""
    return (speeds >= band[0]) & (speeds <= band[1])
