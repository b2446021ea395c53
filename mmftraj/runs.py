"""Runs: lay out `runs/<task>/<name>/` for a RunRequest (new, resumed or overwritten), train, and
write `results.json` plus a terminal table. How the config is resolved: mmftraj.run_request."""

from __future__ import annotations

import json
import math
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .config import from_dict, load_yaml, save_yaml, to_dict
from .core.objective import ModularMeanFlow, variant_label
from .errors import UserError
from .io import atomic_write_text, check_writable
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
from .run_request import (
    RunRequest,
    check_resumed_preset,
    default_run_name,
    normalized,
    resolve,
    resume_config,
    saved_run_config,
)
from .runtime import resolve_device
from .training import check_train_config


def prepare_and_train(task: str, preset: str | None = None, **options) -> dict:
    """`train_run` for a request given as keywords (library callers, benchmarks and tests)."""
    return train_run(RunRequest(task, preset, **options))


def train_run(request: RunRequest, resolved=None) -> dict:
    """Lay out `<runs_dir>/<task>/[<group>/]<name>/` for `request`, train, write results.

    `resolved` is `resolve(request)` when the caller has it already (a report compares it with a
    stored run first), so the config is resolved once.
    """
    if request.resume and request.overwrite:
        raise UserError("--resume continues a run and --overwrite deletes it first; give one of them, not both")
    module, cfg = resolved or resolve(request)
    task = request.task
    preset = request.preset or module.default_preset(cfg)
    name = default_run_name(cfg, preset) if request.name is None else request.name
    run_dir = run_folder(request.runs_dir, task, name, request.group)
    check_run_config(cfg, request)  # before any folder exists
    if request.resume and request.must_exist and not (run_dir.exists() or run_dir.is_symlink()):
        raise UserError(missing_run(run_dir))
    with locked(run_dir):
        saved = run_dir / "config.yaml"
        resumed = False
        if never_trained(run_dir):  # an earlier attempt of ours stopped before its first step: start afresh
            remove(run_dir, "restart")
        if run_dir.is_symlink() or (run_dir.exists() and not run_dir.is_dir()):
            raise UserError(f"{run_dir} is not a run folder mmftraj made; choose another --name")
        if run_dir.exists() and any(run_dir.iterdir()):
            for folder in (run_dir, run_dir / "checkpoints"):  # resumed or deleted: written either way
                if folder.is_dir() and not folder.is_symlink():
                    check_writable(folder, "--runs-dir (or another --name)")
            if request.overwrite:
                remove(run_dir, "overwrite")
            elif request.resume:
                refuse_links(run_dir)
                refuse_wrong_kinds(run_dir)
                if not is_ours(run_dir) and not (saved.is_file() and (run_dir / "checkpoints").is_dir()):
                    raise UserError(f"{run_dir} exists but is not an mmftraj run (no config.yaml and checkpoints); "
                                    f"choose another --name")
                saved_cfg = saved_run_config(run_dir, type(cfg), task)
                check_resumed_preset(module, task, request.preset, saved_cfg)
                cfg = resume_config(saved_cfg, request)
                resumed = True
            else:
                raise UserError(exists_message(run_dir, cfg))
        if not resumed and module.complete is not None:  # a resumed run's saved config has these fields
            cfg = module.complete(cfg)
        check_run_config(cfg, request)  # the resumed run's config, too
        claim(run_dir, task)
        save_yaml(cfg, saved)
        try:
            results = module.train(cfg, run_dir, resume=request.resume, progress=request.progress)
        except BaseException:
            if never_trained(run_dir):  # it stopped before its first step: leave nothing behind
                remove(run_dir, "clean up")
            raise
        results = {"task": task, "run_dir": str(run_dir), **results,
                   "variant": variant_label(cfg.objective), "tangent": cfg.objective.tangent}
        write_results(run_dir, results)
    print_results(results)
    return results


def exists_message(run_dir: Path, cfg) -> str:
    """Why a new run cannot start in `run_dir`, naming the config fields in which its config.yaml
    differs from this command's: a default name (objective, preset, seed) leaves out --set values."""
    plain = f"run {run_dir} already exists; pass --resume to continue it, --overwrite, or another --name"
    try:
        saved = to_dict(normalized(from_dict(type(cfg), load_yaml(run_dir / "config.yaml") or {})))
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


def check_run_config(cfg, request: RunRequest) -> None:
    """Refuse bad training values, objective values and devices with one line each."""
    check_train_config(cfg.train)
    ModularMeanFlow(cfg.objective)
    resolve_device(cfg.train.device, source=request.device_source())


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
