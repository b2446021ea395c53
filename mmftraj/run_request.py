"""A training run as asked for, and the config it resolves to.

A `RunRequest` carries a run's options once, from the CLI (or a report, a benchmark) to the
trainer. Its config is resolved in one order: the task's dataclass defaults ← preset YAML ←
the user's YAML file ← the request's options (objective, steps, seed, device) ← its --set
overrides, which win. A resumed run starts from the config it trained with instead, and only
how it trains and is evaluated may change.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, replace
from pathlib import Path

from .checkpoint import latest_checkpoint, read_meta
from .config import apply_overrides, from_dict, load_yaml, merge_dict, to_dict
from .core.objective import VARIANTS, resolve_tangent, variant_label
from .errors import UserError, choice_error
from .resources import resource_path
from .tasks import get_task

RESUMABLE_SECTIONS = ("train", "eval", "runtime")  # how a run trains and is evaluated, not what it learns


@dataclass(frozen=True)
class RunRequest:
    """One run's options. `name` and `group` are single path components of
    `<runs_dir>/<task>/[<group>/]<name>/`; `resume` continues the run if it is there and starts it
    otherwise (reports and benchmarks rely on that), and with `must_exist` (the CLI's --resume) a
    missing run is an error instead; `overwrite` deletes only a folder mmftraj made."""

    task: str
    preset: str | None = None
    config_file: Path | None = None
    overrides: tuple[str, ...] = field(default=())
    objective: str | None = None
    steps: int | None = None
    seed: int | None = None
    device: str | None = None
    name: str | None = None
    group: str | None = None
    runs_dir: Path = Path("runs")
    resume: bool = False
    overwrite: bool = False
    must_exist: bool = False
    progress: bool = True

    def __post_init__(self):
        object.__setattr__(self, "overrides", tuple(self.overrides))
        object.__setattr__(self, "runs_dir", Path(self.runs_dir))

    def device_source(self) -> str:
        """Where train.device came from, for error messages."""
        if any(o.replace(" ", "").startswith("train.device=") for o in self.overrides):
            return "--set train.device"
        return "--device" if self.device is not None else f"train.device (the {self.task} task's default)"


def preset_config(task_module, task: str, preset: str | None):
    """The task's dataclass defaults overlaid with configs/<task>[-<preset>].yaml when present."""
    presets = task_module.presets
    if preset is not None and not presets:
        raise UserError(f"task {task} has no presets (got --preset {preset}); change it with --set or --config")
    if preset is not None and preset not in presets:
        raise choice_error(f"preset for {task}", preset, presets)
    cfg = task_module.default_config(preset)
    for name in (f"{task}.yaml", f"{task}-{preset}.yaml" if preset else None):
        if name and resource_path("configs", name).is_file():
            cfg = merge_dict(cfg, load_yaml(resource_path("configs", name)))
    return cfg


def resolve(request: RunRequest):
    """(task module, config) of a new run as `request` asks for it; the task's checks applied."""
    module = get_task(request.task)
    cfg = preset_config(module, request.task, request.preset)
    if request.config_file is not None:
        cfg = merge_dict(cfg, load_yaml(request.config_file))
    cfg = apply_options(cfg, request)
    if module.check is not None:
        module.check(cfg, request.preset)
    return module, cfg


def resolve_config(task: str, preset: str | None = None, **options):
    """`resolve` for a request given as keywords (library callers and tests)."""
    return resolve(RunRequest(task, preset, **options))


def normalized(cfg):
    """A copy of `cfg` whose objective names the tangent it trains with, never "auto" (config.yaml
    records that; a config saved before tangents were resolved names "auto")."""
    cfg = copy.deepcopy(cfg)
    if hasattr(cfg, "objective"):
        cfg.objective.tangent = resolve_tangent(cfg.objective)
    return cfg


def apply_options(cfg, request: RunRequest):
    """A copy of `cfg` with the request's options applied, then its --set overrides (which win)."""
    cfg = copy.deepcopy(cfg)
    if request.objective is not None:
        if request.objective not in VARIANTS:
            raise choice_error("objective", request.objective, VARIANTS)
        cfg.objective.variant = request.objective
    if request.steps is not None:
        if request.steps < 1:
            raise UserError(f"--steps must be at least 1, got {request.steps}")
        cfg.train.steps = request.steps
    if request.seed is not None:
        cfg.train.seed = request.seed
    if request.device is not None:
        cfg.train.device = request.device
    return normalized(apply_overrides(cfg, list(request.overrides)))


def resume_config(saved, request: RunRequest):
    """The saved config of a run being resumed, with the request's options and --set applied.

    Resume continues the same run, so the saved config wins over presets and defaults; only how
    it trains and is evaluated may change. A change to the model, data or objective is refused
    rather than silently ignored; repeating the original command's own values is fine. The seed
    is not applied: it names the run, and reseeding half-way would make a different one.
    """
    saved = normalized(saved)
    cfg = apply_options(saved, replace(request, seed=None))
    after = to_dict(cfg)
    changed = [f"{section}.{key}" for section, fields in to_dict(saved).items() if section not in RESUMABLE_SECTIONS
               for key, value in fields.items() if value != after[section][key]]
    if changed:
        raise UserError(f"--resume keeps the run's model, data and objective, but this command changes "
                        f"{', '.join(changed)}; start a new run (--name) instead")
    return cfg


def saved_run_config(run_dir: Path, config_type, task: str | None = None):
    """The config a run trained with: the one stored in its latest checkpoint, which config.yaml
    must agree with on what the model learned (a hand-edited or emptied config.yaml is refused),
    and whose task must be `task` (another task's config could otherwise pass as this one's)."""
    saved = run_dir / "config.yaml"
    ckpt = latest_checkpoint(run_dir)
    from_ckpt = None
    if ckpt is not None:
        meta = read_meta(ckpt)
        stored = meta.get("config")
        if task is not None and "task" in meta and meta["task"] != task:  # no task: load_checkpoint's checks
            raise UserError(f"checkpoint {ckpt} belongs to task {meta.get('task')!r}, not {task!r}; resume it with "
                            f"its own --task, or start a new run")
        from_ckpt = normalized(from_dict(config_type, stored)) if isinstance(stored, dict) else None
    if not saved.is_file():
        if from_ckpt is None:
            raise UserError(f"run {run_dir} has neither config.yaml nor a checkpoint to resume from")
        return from_ckpt
    from_file = normalized(from_dict(config_type, load_yaml(saved) or {}, prefix=f"{saved}: "))
    if from_ckpt is not None:
        a, b = to_dict(from_ckpt), to_dict(from_file)
        differ = [f"{sec}.{k}" for sec, fields in a.items() if sec not in RESUMABLE_SECTIONS
                  for k, v in fields.items() if b.get(sec, {}).get(k) != v]
        if differ:
            raise UserError(f"{saved} disagrees with the run's checkpoint {ckpt.name} on {', '.join(differ[:6])}"
                            f"{' ...' if len(differ) > 6 else ''}; restore it (the checkpoint's meta.json holds the "
                            f"config it trained with) or start a new run")
        return from_ckpt
    return from_file


def check_resumed_preset(module, task: str, preset: str | None, saved) -> None:
    """--resume keeps the run's model, data and objective: a --preset that sets any of them to
    other values than the run's is refused rather than silently ignored."""
    if preset is None:
        return
    plain, chosen = to_dict(preset_config(module, task, None)), to_dict(preset_config(module, task, preset))
    ran = to_dict(saved)
    differ = [f"{sec}.{key} ({ran[sec][key]!r} in the run, {value!r} in the preset)"
              for sec, fields in chosen.items() if sec not in RESUMABLE_SECTIONS
              for key, value in fields.items() if value != plain[sec][key] and ran.get(sec, {}).get(key) != value]
    if differ:
        raise UserError(f"--resume keeps the run's model, data and objective, but --preset {preset} sets "
                        f"{', '.join(differ[:4])}; resume without --preset or start a new run (--name)")


def default_run_name(cfg, preset: str | None) -> str:
    parts = [variant_label(cfg.objective), preset, f"s{cfg.train.seed}"]
    return "-".join(p for p in parts if p)
