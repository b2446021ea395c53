"""Pictures of rollouts from rendered frames: an animated GIF of several episodes side by side,
and a strip of a few frames per episode, what a person looks at to see how a policy behaves."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io import atomic_path
from .figures import pyplot, save_png


def tile(frames: list[list[np.ndarray]], t: int) -> np.ndarray:
    """Frame t of every episode side by side (an ended episode holds its last frame)."""
    return np.concatenate([ep[min(t, len(ep) - 1)] for ep in frames], axis=1)


def save_gif(frames: list[list[np.ndarray]], path: Path, fps: int = 10, every: int = 1) -> None:
    """Episodes (lists of (H, W, 3) uint8 frames) played side by side, written atomically."""
    from PIL import Image

    length = max(len(ep) for ep in frames)
    images = [Image.fromarray(tile(frames, t)) for t in range(0, length, every)]
    with atomic_path(path, suffix=".gif") as tmp:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=int(1000 * every / fps),
                       loop=0)


def save_strip(frames: list[list[np.ndarray]], labels: list[str], path: Path, columns: int = 6) -> None:
    """One row per episode: `columns` frames evenly spaced from its start to its end."""
    plt = pyplot()
    fig, axes = plt.subplots(len(frames), columns, figsize=(1.6 * columns, 1.7 * len(frames)), squeeze=False)
    for row, (ep, label) in enumerate(zip(frames, labels, strict=True)):
        for col, t in enumerate(np.linspace(0, len(ep) - 1, columns).round().astype(int)):
            ax = axes[row, col]
            ax.imshow(ep[t])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"step {t}", fontsize=7)
        axes[row, 0].set_ylabel(label, fontsize=7)
    save_png(fig, path)
