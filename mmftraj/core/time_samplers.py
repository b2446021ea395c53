"""(r, t) samplers. Two draws, t = max, r = min, and a fixed share of the batch gets r = t (those
samples are plain flow matching and need no JVP). The second draw comes from t's distribution
unless it has its own logit-normal (`r_mean`, `r_std`), as in MeanFlow's CIFAR-10 recipe."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..errors import UserError, choice_error


@dataclass(frozen=True)
class TimeSampler:
    kind: str = "logit_normal"  # "uniform" | "logit_normal"
    mean: float = -0.4
    std: float = 1.0
    equal_fraction: float = 0.75  # share of samples with r = t
    r_mean: float | None = None  # the second draw's logit-normal; None: the same as the first
    r_std: float | None = None

    def __post_init__(self):
        if self.kind not in ("uniform", "logit_normal"):
            raise choice_error("time sampler", self.kind, ["uniform", "logit_normal"])
        if not 0.0 <= self.equal_fraction <= 1.0:
            raise UserError(f"equal_fraction must lie in [0, 1], got {self.equal_fraction}")
        if self.std <= 0 or (self.r_std is not None and self.r_std <= 0):
            raise UserError(f"time sampler std must be positive, got {self.std} (r: {self.r_std})")
        if self.kind == "uniform" and (self.r_mean is not None or self.r_std is not None):
            raise UserError("time_r_mean / time_r_std shape a logit-normal draw; the uniform sampler has none")

    def _base(self, shape, generator, device, mean: float, std: float) -> torch.Tensor:
        if self.kind == "uniform":
            return torch.rand(shape, generator=generator, device=device)
        return torch.sigmoid(mean + std * torch.randn(shape, generator=generator, device=device))

    def sample(self, n: int, generator: torch.Generator | None = None, device="cpu"):
        """Return (r, t), each of shape (n,), with 0 ≤ r ≤ t ≤ 1.

        Exactly round(n · equal_fraction) samples (the first ones) have r = t, so the cost of the
        JVP over the rest is known in advance and the batch can be split without masks.
        """
        gen_device = generator.device if generator is not None else device
        a = self._base((n,), generator, gen_device, self.mean, self.std)
        b = self._base((n,), generator, gen_device, self.mean if self.r_mean is None else self.r_mean,
                       self.std if self.r_std is None else self.r_std)
        t = torch.maximum(a, b)
        r = torch.minimum(a, b)
        n_equal = int(round(n * self.equal_fraction))
        r = torch.cat([t[:n_equal], r[n_equal:]])
        return r.to(device), t.to(device)
