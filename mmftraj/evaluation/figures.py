"""Matplotlib without a display, and PNGs written atomically: what every plot in the project needs."""

from __future__ import annotations

from pathlib import Path

from ..io import atomic_path


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed), imported only when a plot is drawn."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def save_png(fig, path: Path, dpi: int = 110) -> None:
    """Lay out, write atomically (a reader never sees half a file) and close the figure."""

    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=dpi)
    pyplot().close(fig)
