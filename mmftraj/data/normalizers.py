"""Per-feature normalizers: fit on data, invert exactly, save as a plain dict with the run.

`limits` maps each feature's [min, max] to [-1, 1] (Diffuser's LimitsNormalizer); `gaussian`
standardizes to zero mean, unit std. Both work on numpy arrays and torch tensors of shape (..., D).
A constant feature gets scale 1, so it maps to 0 (limits) or 0 (gaussian) and back exactly.
"""

from __future__ import annotations

import numpy as np
import torch

from ..errors import UserError, choice_error

KINDS = ("limits", "gaussian")


class Normalizer:
    """x_norm = (x - shift) / scale, per feature (last axis)."""

    def __init__(self, kind: str, shift, scale):
        if kind not in KINDS:
            raise choice_error("normalizer", kind, KINDS)
        self.kind = kind
        self.shift = np.asarray(shift, dtype=np.float64)
        self.scale = np.asarray(scale, dtype=np.float64)

    @classmethod
    def fit(cls, x, kind: str = "limits") -> Normalizer:
        """Fit on (N, D) data (or anything reshaping to (-1, D))."""
        if kind not in KINDS:
            raise choice_error("normalizer", kind, KINDS)
        x = np.asarray(x, dtype=np.float64)
        x = x.reshape(-1, x.shape[-1])
        if len(x) == 0:
            raise UserError("cannot fit a normalizer on an empty dataset")
        if kind == "limits":
            lo, hi = x.min(axis=0), x.max(axis=0)
            shift, scale = (hi + lo) / 2, (hi - lo) / 2
        else:
            shift, scale = x.mean(axis=0), x.std(axis=0)
        scale = np.where(scale > 0, scale, 1.0)
        return cls(kind, shift, scale)

    @property
    def dim(self) -> int:
        return self.shift.shape[0]

    def _params(self, x):
        if isinstance(x, np.ndarray):
            return self.shift.astype(x.dtype), self.scale.astype(x.dtype)

        return (torch.as_tensor(self.shift, dtype=x.dtype, device=x.device),
                torch.as_tensor(self.scale, dtype=x.dtype, device=x.device))

    def normalize(self, x):
        shift, scale = self._params(x)
        return (x - shift) / scale

    def unnormalize(self, x):
        shift, scale = self._params(x)
        return x * scale + shift

    def state_dict(self) -> dict:
        """JSON-serialisable: {'kind', 'shift': [...], 'scale': [...]}."""
        return {"kind": self.kind, "shift": self.shift.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_state_dict(cls, state: dict) -> Normalizer:
        try:
            return cls(state["kind"], state["shift"], state["scale"])
        except KeyError as exc:
            raise UserError(f"normalizer state is missing {exc.args[0]!r}") from None

    def __repr__(self) -> str:
        return f"Normalizer(kind={self.kind!r}, dim={self.dim})"
