"""Top-down pictures of a maze with plans and rollouts (matplotlib Agg: no display, no OpenGL)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import atomic_path
from .layouts import Layout


def plot_maze(layout: Layout, lines=(), start=None, goal=None, labels=None, ax=None, path=None,
              title: str | None = None):
    """Draw walls (qpos coordinates, x down the rows as d4rl) plus optional (T, >=2) xy lines.

    `lines` are plans or rollouts (only the first two columns are used); `labels` names them in a
    legend. Returns the figure; with `path` it is also saved atomically (PNG/PDF/SVG by suffix).
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    own = ax is None
    if own:
        rows, cols = layout.shape
        fig, ax = plt.subplots(figsize=(0.5 * cols + 1, 0.5 * rows + 1))
    else:
        fig = ax.figure
    for x0, y0, x1, y1 in layout.wall_boxes():
        # plot y (columns) horizontally and x (rows) downwards, so the picture reads like the text
        ax.add_patch(Rectangle((y0, x0), y1 - y0, x1 - x0, color="0.25", lw=0))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for k, line in enumerate(lines):
        xy = np.asarray(line, dtype=np.float64)
        label = labels[k] if labels is not None and k < len(labels) else None
        ax.plot(xy[:, 1], xy[:, 0], "-", lw=1.5, color=colors[k % len(colors)], label=label)
    if start is not None:
        ax.plot(start[1], start[0], "o", color="tab:green", ms=8, label="start")
    if goal is not None:
        ax.plot(goal[1], goal[0], "*", color="tab:red", ms=12, label="goal")
    box = layout.wall_boxes()
    if len(box):
        ax.set_xlim(box[:, 1].min(), box[:, 3].max())
        ax.set_ylim(box[:, 2].max(), box[:, 0].min())
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    if labels:
        ax.legend(loc="upper right", fontsize=7)
    if path is not None:
        path = Path(path)
        with atomic_path(path, suffix=path.suffix) as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight", format=path.suffix.lstrip(".") or "png")
    if own and path is not None:
        plt.close(fig)
    return fig
