"""The task-agnostic core: the MMF objective family, λ schedules, time samplers, JVPs, samplers."""

from .jvp import JVP_BACKENDS, get_jvp_backend
from .objective import VARIANTS, ModularMeanFlow, ObjectiveConfig
from .sampling import sample, time_grid
from .schedules import LAMBDA_SCHEDULES, make_lambda_schedule
from .time_samplers import TimeSampler

__all__ = [
    "JVP_BACKENDS",
    "LAMBDA_SCHEDULES",
    "VARIANTS",
    "ModularMeanFlow",
    "ObjectiveConfig",
    "TimeSampler",
    "get_jvp_backend",
    "make_lambda_schedule",
    "sample",
    "time_grid",
]
