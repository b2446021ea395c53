"""λ schedules: how much of the du/dt gradient flows, as a function of the global step.

λ = 0 is MeanFlow's stop-gradient target, λ = 1 the fully differentiable identity. MMF warms λ
from 0 to 1 so early training is as stable as MeanFlow and late training uses the full gradient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import choice_error


class LambdaSchedule:
    """Maps a global training step to λ ∈ [0, 1]. Subclass and register to add a schedule."""

    def __call__(self, step: int) -> float:  # pragma: no cover - interface
        raise NotImplementedError


@dataclass(frozen=True)
class ConstantLambda(LambdaSchedule):
    value: float

    def __call__(self, step: int) -> float:
        return float(self.value)


@dataclass(frozen=True)
class LinearWarmupLambda(LambdaSchedule):
    """0 until `start`, then a straight line to 1 over `duration` steps, then 1."""

    start: int
    duration: int

    def __call__(self, step: int) -> float:
        if self.duration <= 0:
            return 1.0 if step >= self.start else 0.0
        return float(min(1.0, max(0.0, (step - self.start) / self.duration)))


@dataclass(frozen=True)
class CosineWarmupLambda(LambdaSchedule):
    """Like the linear warm-up but with a half-cosine ramp (gentle at both ends)."""

    start: int
    duration: int

    def __call__(self, step: int) -> float:
        lin = LinearWarmupLambda(self.start, self.duration)(step)
        return 0.5 - 0.5 * math.cos(math.pi * lin)


LAMBDA_SCHEDULES = {
    "constant": lambda value, start, duration: ConstantLambda(value),
    "linear": lambda value, start, duration: LinearWarmupLambda(start, duration),
    "cosine": lambda value, start, duration: CosineWarmupLambda(start, duration),
}


def make_lambda_schedule(name: str, value: float = 0.0, start: int = 0, duration: int = 1000) -> LambdaSchedule:
    if name not in LAMBDA_SCHEDULES:
        raise choice_error("lambda schedule", name, LAMBDA_SCHEDULES)
    return LAMBDA_SCHEDULES[name](value, start, duration)
