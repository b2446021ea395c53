"""Trajectory windows drawn as paths, one panel per set: generated windows beside data windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .figures import pyplot, save_png


def plot_windows(panels: list[tuple[str, np.ndarray]], columns: list[str], path: Path, count: int, title: str) -> None:
    """Raw windows (N, H, D) as paths in the plane of the first two state columns (one column:
    against time), one panel per (label, windows), the first `count` of each; `columns` names the
    state columns for the axes."""

    fig, axes = pyplot().subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), sharex=True, sharey=True,
                                  squeeze=False)
    for ax, (label, raw) in zip(axes[0], panels, strict=True):
        for window in raw[:count]:
            if len(columns) >= 2:
                ax.plot(window[:, 0], window[:, 1], lw=0.8)
            else:
                ax.plot(window[:, 0], lw=0.8)
        ax.set_title(label)
    axes[0][0].set_xlabel(columns[0] if len(columns) >= 2 else "step")
    axes[0][0].set_ylabel(columns[1] if len(columns) >= 2 else columns[0])
    fig.suptitle(title)
    save_png(fig, path)
