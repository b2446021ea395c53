"""(r, t) samplers. Both times come from one base distribution, t = max, r = min, and a fixed
share of the batch gets r = t (those samples are plain flow matching and need no JVP)."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class TimeSampler:
    kind: str = "logit_normal"  # "uniform" | "logit_normal"
    mean: float = -0.4
    std: float = 1.0
    equal_fraction: float = 0.75  # share of samples with r = t

    def __post_init__(self):
        from ..errors import UserError, choice_error

        if self.kind not in ("uniform", "logit_normal"):
            raise choice_error("time sampler", self.kind, ["uniform", "logit_normal"])
        if not 0.0 <= self.equal_fraction <= 1.0:
            raise UserError(f"equal_fraction must lie in [0, 1], got {self.equal_fraction}")
        if self.std <= 0:
            raise UserError(f"time sampler std must be positive, got {self.std}")

    def _base(self, shape, generator, device) -> torch.Tensor:
        if self.kind == "uniform":
            return torch.rand(shape, generator=generator, device=device)
        return torch.sigmoid(self.mean + self.std * torch.randn(shape, generator=generator, device=device))

    def sample(self, n: int, generator: torch.Generator | None = None, device="cpu"):
        """Return (r, t), each of shape (n,), with 0 ≤ r ≤ t ≤ 1.

        Exactly round(n · equal_fraction) samples (the first ones) have r = t, so the cost of the
        JVP over the rest is known in advance and the batch can be split without masks.
        """
        gen_device = generator.device if generator is not None else device
        a = self._base((n,), generator, gen_device)
        b = self._base((n,), generator, gen_device)
        t = torch.maximum(a, b)
        r = torch.minimum(a, b)
        n_equal = int(round(n * self.equal_fraction))
        r = torch.cat([t[:n_equal], r[n_equal:]])
        return r.to(device), t.to(device)
