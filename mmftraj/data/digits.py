"""scikit-learn's bundled 8×8 handwritten digits (1797 images, shipped inside the wheel, no
download) as an image tensor in [-1, 1], optionally upsampled so the U-Net has more levels."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ..errors import UserError

SIZES = (8, 16, 32)


def load_digits_images(size: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 1, size, size) float32 in [-1, 1], labels (N,) int64)."""
    if size not in SIZES:
        raise UserError(f"digits image size must be one of {', '.join(map(str, SIZES))}, got {size}")
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise UserError("the digits task needs scikit-learn: pip install 'mmftraj[image]'") from None
    bunch = load_digits()
    x = torch.as_tensor(bunch.images, dtype=torch.float32)[:, None] / 16.0 * 2.0 - 1.0
    if size != 8:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(-1, 1)
    return x.contiguous(), torch.as_tensor(bunch.target, dtype=torch.int64)
