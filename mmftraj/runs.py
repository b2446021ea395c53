"""Runs: resolve a task's config (defaults ← preset YAML ← user YAML ← CLI options ← --set),
lay out `runs/<task>/<name>/`, train, and write `results.json` plus a terminal table."""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .checkpoint import latest_checkpoint, read_meta
from .config import apply_overrides, from_dict, load_yaml, merge_dict, save_yaml, to_dict
from .core.objective import VARIANTS, ModularMeanFlow, resolve_tangent, variant_label
from .errors import UserError, choice_error
from .io import atomic_write_text, check_writable
from .resources import resource_path
from .run_folders import (
    claim,
    is_ours,
    locked,
    missing_run,
    never_trained,
    refuse_links,
    refuse_wrong_kinds,
    remove,
    run_folder,
)
from .runtime import resolve_device
from .tasks import get_task
from .training import check_train_config


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


def resolve_config(task, preset=None, config_file=None, overrides=(), objective=None, steps=None, seed=None, device=None):
    module = get_task(task)
    cfg = preset_config(module, task, preset)
    if config_file is not None:
        cfg = merge_dict(cfg, load_yaml(config_file))
    cfg = apply_options(cfg, overrides, objective, steps, seed, device)
    if module.check is not None:
        module.check(cfg, preset)
    return module, cfg


def apply_options(cfg, overrides=(), objective=None, steps=None, seed=None, device=None):
    """A copy of `cfg` with the command line's options applied, then its --set overrides (which win)."""
    cfg = copy.deepcopy(cfg)
    if objective is not None:
        if objective not in VARIANTS:
            raise choice_error("objective", objective, VARIANTS)
        cfg.objective.variant = objective
    if steps is not None:
        if steps < 1:
            raise UserError(f"--steps must be at least 1, got {steps}")
        cfg.train.steps = steps
    if seed is not None:
        cfg.train.seed = seed
    if device is not None:
        cfg.train.device = device
    cfg = apply_overrides(cfg, list(overrides))
    if hasattr(cfg, "objective"):  # config.yaml records the tangent a run trains with, never "auto"
        cfg.objective.tangent = resolve_tangent(cfg.objective)
    return cfg


RESUMABLE_SECTIONS = ("train", "eval", "runtime")  # how a run trains and is evaluated, not what it learns


def resume_config(saved, overrides=(), steps=None, device=None, objective=None):
    """The saved config of a run being resumed, with this command's options and --set applied.

    Resume continues the same run, so the saved config wins over presets and defaults; only how
    it trains and is evaluated may change. A change to the model, data or objective is refused
    rather than silently ignored; repeating the original command's own values is fine. --seed is
    not applied: it names the run, and reseeding half-way would make a different one.
    """
    saved = apply_options(saved)  # a config saved before tangents were resolved names "auto"
    cfg = apply_options(saved, overrides, objective, steps, None, device)
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
        from_ckpt = apply_options(from_dict(config_type, stored)) if isinstance(stored, dict) else None
    if not saved.is_file():
        if from_ckpt is None:
            raise UserError(f"run {run_dir} has neither config.yaml nor a checkpoint to resume from")
        return from_ckpt
    from_file = apply_options(from_dict(config_type, load_yaml(saved) or {}, prefix=f"{saved}: "))
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


def default_run_name(cfg, preset: str | None) -> str:
    parts = [variant_label(cfg.objective), preset, f"s{cfg.train.seed}"]
    return "-".join(p for p in parts if p)


def prepare_and_train(
    task: str,
    preset: str | None = None,
    config_file: Path | None = None,
    overrides=(),
    objective: str | None = None,
    steps: int | None = None,
    seed: int | None = None,
    device: str | None = None,
    name: str | None = None,
    runs_dir: Path = Path("runs"),
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    group: str | None = None,
    must_exist: bool = False,
) -> dict:
    """Resolve the config, lay out `<runs_dir>/<task>/[<group>/]<name>/`, train, write results.

    `name` and `group` are single path components; `overwrite` deletes only a folder mmftraj made.
    `resume` continues the run if it is there and starts it otherwise (reports and benchmarks rely
    on that); with `must_exist` (the CLI's --resume) a missing run is an error instead.
    """
    if resume and overwrite:
        raise UserError("--resume continues a run and --overwrite deletes it first; give one of them, not both")
    module, cfg = resolve_config(task, preset, config_file, overrides, objective, steps, seed, device)
    asked_preset = preset
    preset = preset or module.default_preset(cfg)
    run_dir = run_folder(runs_dir, task, default_run_name(cfg, preset) if name is None else name, group)
    check_run_config(cfg, task, device, overrides)  # before any folder exists
    if resume and must_exist and not (run_dir.exists() or run_dir.is_symlink()):
        raise UserError(missing_run(run_dir))
    with locked(run_dir):
        saved = run_dir / "config.yaml"
        if never_trained(run_dir):  # an earlier attempt of ours stopped before its first step: start afresh
            remove(run_dir, "restart")
        if run_dir.is_symlink() or (run_dir.exists() and not run_dir.is_dir()):
            raise UserError(f"{run_dir} is not a run folder mmftraj made; choose another --name")
        if run_dir.exists() and any(run_dir.iterdir()):
            for folder in (run_dir, run_dir / "checkpoints"):  # resumed or deleted: written either way
                if folder.is_dir() and not folder.is_symlink():
                    check_writable(folder, "--runs-dir (or another --name)")
            if overwrite:
                remove(run_dir, "overwrite")
            elif resume:
                refuse_links(run_dir)
                refuse_wrong_kinds(run_dir)
                if not is_ours(run_dir) and not (saved.is_file() and (run_dir / "checkpoints").is_dir()):
                    raise UserError(f"{run_dir} exists but is not an mmftraj run (no config.yaml and checkpoints); "
                                    f"choose another --name")
                saved_cfg = saved_run_config(run_dir, type(cfg), task)
                check_resumed_preset(module, task, asked_preset, saved_cfg)
                cfg = resume_config(saved_cfg, overrides, steps, device, objective)
            else:
                raise UserError(exists_message(run_dir, cfg))
        check_run_config(cfg, task, device, overrides)  # the resumed run's config, too
        claim(run_dir, task)
        save_yaml(cfg, saved)
        try:
            results = module.train(cfg, run_dir, resume=resume, progress=progress)
        except BaseException:
            if never_trained(run_dir):  # it stopped before its first step: leave nothing behind
                remove(run_dir, "clean up")
            raise
        results = {"task": task, "run_dir": str(run_dir), **results,
                   "variant": variant_label(cfg.objective), "tangent": cfg.objective.tangent}
        write_results(run_dir, results)
    print_results(results)
    return results


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


def exists_message(run_dir: Path, cfg) -> str:
    """Why a new run cannot start in `run_dir`, naming the config fields in which its config.yaml
    differs from this command's: a default name (objective, preset, seed) leaves out --set values."""
    plain = f"run {run_dir} already exists; pass --resume to continue it, --overwrite, or another --name"
    try:
        saved = to_dict(apply_options(from_dict(type(cfg), load_yaml(run_dir / "config.yaml") or {})))
    except (UserError, OSError, TypeError, ValueError, AttributeError):
        return plain
    now = to_dict(cfg)
    differ = [(f"{sec}.{key}", value, now[sec][key]) for sec, fields in saved.items() if isinstance(fields, dict)
              for key, value in fields.items() if sec in now and key in now[sec] and now[sec][key] != value]
    if not differ:
        return plain
    shown = ", ".join(f"{name}={_show(old)} (this command: {_show(new)})" for name, old, new in differ[:4])
    more = f" and {len(differ) - 4} more fields" if len(differ) > 4 else ""
    return (f"run {run_dir} already exists and was trained with {shown}{more}; give this run its own --name, "
            f"or --resume/--overwrite that one")


def _show(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def check_run_config(cfg, task: str, device, overrides) -> None:
    """Refuse bad training values, objective values and devices with one line each."""
    check_train_config(cfg.train)
    ModularMeanFlow(cfg.objective)
    resolve_device(cfg.train.device, source=_device_source(task, device, overrides))


def _device_source(task: str, device: str | None, overrides) -> str:
    """Where train.device came from, for error messages."""
    if any(o.replace(" ", "").startswith("train.device=") for o in overrides):
        return "--set train.device"
    return "--device" if device is not None else f"train.device (the {task} task's default)"


def write_results(run_dir: Path, results: dict) -> None:
    atomic_write_text(Path(run_dir) / "results.json", json.dumps(_strict_json(results), indent=2, default=float) + "\n")


def _strict_json(value):
    """NaN/inf become null: results.json stays valid JSON for any reader, not only Python's."""
    if isinstance(value, dict):
        return {k: _strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_strict_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def print_results(results: dict) -> None:
    table = Table(show_header=True)
    table.add_column("metric")
    table.add_column("value", justify="right")

    def add(prefix: str, value):
        if isinstance(value, dict):
            for k, v in value.items():
                add(f"{prefix}.{k}" if prefix else str(k), v)
        elif isinstance(value, float):
            table.add_row(prefix, f"{value:.4g}")
        elif not isinstance(value, (list, tuple)):
            table.add_row(prefix, str(value))

    add("", {k: v for k, v in results.items() if k != "run_dir"})
    console = Console()
    if results.get("run_dir"):
        console.print(f"results: {results['run_dir']}", soft_wrap=True, markup=False, highlight=False)
    console.print(table)
