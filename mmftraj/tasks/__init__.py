"""Task registry: name → module. A task module wires data + model + evaluation and exposes

    Config                      a dataclass with at least `objective` and `train` sections
    default_config(preset)      the Config for a preset (YAML from configs/ over the dataclass)
    PRESETS                     valid preset names (may be empty)
    train(cfg, run_dir)         trains with mmftraj.training and returns a results dict

and optionally `evaluate(...)` / `sample(...)`. Modules load lazily so `mmftraj --help` is fast.
"""

from __future__ import annotations

import importlib

from ..errors import choice_error

TASKS = {
    "toy2d": "mmftraj.tasks.toy2d",
    "digits": "mmftraj.tasks.digits",
    "cifar": "mmftraj.tasks.cifar",
    "maze2d": "mmftraj.tasks.maze2d",
    "motion": "mmftraj.tasks.motion",
}


def get_task(name: str):
    if name not in TASKS:
        raise choice_error("task", name, TASKS)
    return importlib.import_module(TASKS[name])
