"""Task registry: name → `Task`, the protocol the CLI and `runs` call.

A task module (toy2d, maze2d, motion, pusht, digits, cifar) wires data + model + evaluation and defines
`TASK = Task(...)`. Modules are imported when their task is asked for, so `mmftraj --help` does
not load every task's dependencies.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import choice_error


def _no_preset(cfg) -> str | None:
    return None


@dataclass(frozen=True)
class Task:
    """What every task offers. `train(cfg, run_dir, resume, progress)` returns a results dict;
    `evaluate(checkpoint, steps, episodes, seed, out, overrides)` scores a checkpoint;
    `sample(checkpoint, steps, n, out, seed, device)` writes sample files and returns their paths.
    A task without evaluation or sampling leaves those None. `complete(cfg)` returns `cfg` with the
    fields that come from the data filled (motion: the table's columns per step); `runs.train_run`
    calls it once for a new run, before config.yaml is written, so resolving a config (a report, a
    benchmark) never reads the data."""

    name: str
    config: type  # the Config dataclass: sections `objective` and `train` at least
    default_config: Callable[[str | None], Any]  # the dataclass defaults for a preset (before YAML)
    train: Callable[..., dict]
    presets: tuple[str, ...] = ()
    default_preset: Callable[[Any], str | None] = _no_preset  # names a run whose preset was not given
    evaluate: Callable[..., dict] | None = None
    sample: Callable[..., list] | None = None
    # check(cfg, preset): refuse a resolved config that contradicts its preset (None: no check)
    check: Callable[[Any, str | None], None] | None = None
    complete: Callable[[Any], Any] | None = None  # complete(cfg) -> cfg, fields from the data (None: none)


MODULES = {
    "toy2d": "mmftraj.tasks.toy2d",
    "digits": "mmftraj.tasks.digits",
    "cifar": "mmftraj.tasks.cifar",
    "maze2d": "mmftraj.tasks.maze2d",
    "motion": "mmftraj.tasks.motion",
    "pusht": "mmftraj.tasks.pusht",
}
TASKS = tuple(MODULES)


def get_task(name: str) -> Task:
    if name not in MODULES:
        raise choice_error("task", name, MODULES)
    return importlib.import_module(MODULES[name]).TASK
