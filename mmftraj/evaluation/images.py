"""Image outputs: PNG grids people look at and `.npz` arrays programs read."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..io import atomic_path


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] → (N, H, W, C) uint8."""
    x = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def save_grid(images: torch.Tensor, path: Path, scale: int = 1, pad: int = 1) -> Path:
    """Tile up to N images in a near-square grid (nearest-neighbour upscaled `scale`×) as a PNG."""
    from PIL import Image

    arr = to_uint8(images)
    n, h, w, c = arr.shape
    cols = math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    canvas = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad, c), 255, np.uint8)
    for i in range(n):
        y, x = divmod(i, cols)
        canvas[pad + y * (h + pad): pad + y * (h + pad) + h, pad + x * (w + pad): pad + x * (w + pad) + w] = arr[i]
    img = Image.fromarray(canvas[..., 0] if c == 1 else canvas, mode="L" if c == 1 else "RGB")
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    with atomic_path(path, suffix=".png") as tmp:
        img.save(tmp, format="PNG")
    return Path(path)


def save_npz(images: torch.Tensor, path: Path, **meta) -> Path:
    """uint8 NHWC images plus the raw float samples and any scalar metadata."""
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, images=to_uint8(images), samples=images.detach().float().cpu().numpy(),
                                **{k: np.asarray(v) for k, v in meta.items()})
    return Path(path)
