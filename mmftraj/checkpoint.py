"""Checkpoints: tensors in safetensors, metadata in JSON, written atomically as one directory.

A checkpoint is `<run>/checkpoints/step_XXXXXXXX/` holding `tensors.safetensors` (model, EMA,
optimizer state) and `meta.json` (step, config, optimizer hyper-parameters, extra task state, and
the sha256 of the tensors file, checked on load, and its own, over its content less that field).
The directory is built under a temporary name and renamed into place, so a crash mid-write never
leaves a checkpoint that looks complete.
Nothing is unpickled on load.

`checkpoints/last_good.json` names the newest checkpoint the training loop has confirmed (the
loss computed from its weights was healthy); rotation never deletes it, and after a divergence
the checkpoints newer than it are renamed aside to `diverged_step_XXXXXXXX`, which are never
listed, loaded or rotated.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .config import from_dict
from .errors import UserError
from .io import atomic_write_text, umask_mode, write_error

TENSORS = "tensors.safetensors"
META = "meta.json"
LAST_GOOD = "last_good.json"
DIVERGED = "diverged_"  # prefix of checkpoints set aside after a divergence
META_SHA = "meta_sha256"  # meta.json's own checksum, stored in it


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checkpoint_root(run_dir: Path) -> Path:
    """`<run>/checkpoints`, refused when it is a symbolic link: rotation deletes inside it."""
    root = Path(run_dir) / "checkpoints"
    if root.is_symlink():
        raise UserError(f"{root} is a symbolic link; mmftraj never writes or deletes through links: "
                        "replace it with the folder itself")
    return root


def _flatten_optimizer(opt_state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, state in opt_state["state"].items():
        for key, value in state.items():
            if torch.is_tensor(value):
                tensors[f"optim/{idx}/{key}"] = value.detach().cpu().contiguous()
            else:
                scalars.setdefault(str(idx), {})[key] = value
    return tensors, {"param_groups": opt_state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim/"):
            _, idx, key = name.split("/", 2)
            state.setdefault(int(idx), {})[key] = value
    for idx, scalars in meta.get("scalars", {}).items():
        state.setdefault(int(idx), {}).update(scalars)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: torch.nn.Module,
    ema: torch.nn.Module | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    meta: dict | None = None,
    keep: int = 2,
) -> Path:
    """Write checkpoint `step` atomically and keep only the newest `keep` of them, plus the newest
    good one (`last_good.json`) wherever it is."""
    root = checkpoint_root(run_dir)
    root.mkdir(parents=True, exist_ok=True)
    tensors = {f"model/{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema/{k}": v.detach().cpu().contiguous() for k, v in ema.state_dict().items()})
    info = dict(meta or {})
    info["step"] = int(step)
    if optimizer is not None:
        opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
        tensors.update(opt_tensors)
        info["optimizer"] = opt_meta
    final = root / f"step_{step:08d}"
    for stale in root.glob(".step_*"):  # left by a process killed mid-write (one process per run: the lock)
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
    try:
        _write_atomically(tensors, info, root, final)
    except (OSError, SafetensorError) as exc:  # a full disk, a folder made read-only mid-run
        text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        error = exc if isinstance(exc, OSError) else OSError(errno.ENOSPC if "No space left" in text else None, text)
        raise UserError(f"{write_error(error, root, '--runs-dir')}; checkpoint step {step} was not saved, the "
                        f"ones before it are intact") from None
    good = last_good_checkpoint(run_dir)
    for old in list_checkpoints(run_dir)[:-keep] if keep > 0 else []:
        if old != good:
            shutil.rmtree(old, ignore_errors=True)
    return final


def _write_atomically(tensors: dict, info: dict, root: Path, final: Path) -> None:
    """Build the checkpoint in a temporary folder under `root`, then rename it to `final`; a
    failure at any point removes the temporary folder and leaves `final` as it was."""
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        save_file(tensors, str(tmp / TENSORS))
        info["tensors_sha256"] = file_sha256(tmp / TENSORS)
        plain = json.loads(json.dumps(info, default=str))  # as it will be read back
        plain[META_SHA] = meta_digest(plain)
        (tmp / META).write_text(json.dumps(plain, indent=1))
        os.chmod(tmp, umask_mode(directory=True))
        for f in tmp.iterdir():
            os.chmod(f, umask_mode())
        if final.is_symlink():
            final.unlink()
        elif final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def checkpoint_step(ckpt: Path) -> int:
    """The step a `step_XXXXXXXX` checkpoint folder holds, from its name."""
    return int(Path(ckpt).name.split("_")[1])


def list_checkpoints(run_dir: Path) -> list[Path]:
    root = Path(run_dir) / "checkpoints"
    if not root.is_dir():
        return []
    done = [p for p in root.glob("step_*") if (p / META).is_file() and (p / TENSORS).is_file()]
    return sorted(done, key=checkpoint_step)


def latest_checkpoint(run_dir: Path) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


def mark_good(run_dir: Path, step: int) -> None:
    """Record checkpoint `step` as the newest good one (atomically, so it survives any crash)."""
    atomic_write_text(checkpoint_root(run_dir) / LAST_GOOD, json.dumps({"step": int(step)}) + "\n")


def last_good_checkpoint(run_dir: Path) -> Path | None:
    """The checkpoint `last_good.json` names, if it is still there (None for runs that predate it)."""
    record = Path(run_dir) / "checkpoints" / LAST_GOOD
    try:
        step = json.loads(record.read_text()).get("step")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(step, int) or isinstance(step, bool):
        return None
    found = [p for p in list_checkpoints(run_dir) if p.name == f"step_{step:08d}"]
    return found[0] if found else None


def set_aside(run_dir: Path, after: int) -> list[Path]:
    """Rename the checkpoints newer than step `after` to `diverged_step_*` (kept, never loaded)."""
    checkpoint_root(run_dir)  # not through a link
    moved = []
    for ckpt in list_checkpoints(run_dir):
        if checkpoint_step(ckpt) > after:
            target = ckpt.with_name(DIVERGED + ckpt.name)
            n = 1
            while target.exists() or target.is_symlink():  # set aside by an earlier divergence too
                n += 1
                target = ckpt.with_name(f"{DIVERGED}{ckpt.name}-{n}")
            os.replace(ckpt, target)
            moved.append(target)
    return moved


def resolve_checkpoint(path: str | Path) -> Path:
    """Accept a run directory or a checkpoint directory; return the checkpoint directory."""
    path = Path(path)
    if (path / META).is_file():
        return path
    if path.is_dir():
        latest = latest_checkpoint(path)
        if latest is not None:
            return latest
        raise UserError(f"no checkpoint found in {path} (expected {path}/checkpoints/step_*/)")
    if path.is_file():
        raise UserError(f"--checkpoint takes a run folder or one of its checkpoints/step_* folders, not the file "
                        f"{path}")
    raise UserError(f"checkpoint not found: {path}")


def meta_digest(meta: dict) -> str:
    """sha256 of a checkpoint's metadata less its own checksum, whatever the key order or spacing."""
    body = {k: v for k, v in meta.items() if k != META_SHA}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def read_meta(ckpt: Path) -> dict:
    """A checkpoint's meta.json, refused (UserError) when it is not JSON, names no whole-number step,
    or does not match the checksum saved in it (absent in checkpoints written before it was stored):
    a changed byte could otherwise resume or evaluate with other settings and exit 0."""
    try:
        meta = json.loads((ckpt / META).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"checkpoint {ckpt} is unreadable or corrupt: {exc}") from None
    step = meta.get("step") if isinstance(meta, dict) else None
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise UserError(f"checkpoint {ckpt}: {META} is not one mmftraj wrote (step {step!r}); use another checkpoint")
    saved = meta.get(META_SHA)
    if saved is not None and saved != meta_digest(meta):
        raise UserError(f"checkpoint {ckpt} is corrupt: its {META} does not match the checksum saved in it; "
                        "use an earlier checkpoint")
    return meta


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Return (tensors, meta) of a checkpoint directory or of a run's latest checkpoint."""
    ckpt = resolve_checkpoint(path)
    meta = read_meta(ckpt)
    try:
        saved = meta.get("tensors_sha256")  # absent in checkpoints written before it was stored
        if saved is not None and file_sha256(ckpt / TENSORS) != saved:
            raise UserError(f"checkpoint {ckpt} is corrupt: its tensors do not match the checksum saved with them; "
                            "use an earlier checkpoint")
        tensors = load_file(str(ckpt / TENSORS))
    except (OSError, ValueError, SafetensorError) as exc:
        raise UserError(f"checkpoint {ckpt} is unreadable or corrupt: {exc}") from None
    bad = [name for name, t in tensors.items() if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise UserError(f"checkpoint {ckpt} holds non-finite values ({len(bad)} tensors, e.g. {bad[0]}): "
                        "it is corrupt or was saved from a diverged run; use an earlier checkpoint")
    return tensors, meta


def split_prefix(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    p = prefix.rstrip("/") + "/"
    return {k[len(p) :]: v for k, v in tensors.items() if k.startswith(p)}


def restore_optimizer(optimizer: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], meta: dict) -> None:
    """Load the saved optimizer state; one that does not fit (a damaged meta.json, another model's
    optimizer) is a UserError rather than torch's KeyError or ValueError from deep inside."""
    if "optimizer" not in meta:
        return
    try:
        optimizer.load_state_dict(_unflatten_optimizer(tensors, meta["optimizer"]))
    except (KeyError, ValueError, TypeError, AttributeError, IndexError, RuntimeError) as exc:
        raise UserError(f"the checkpoint's optimizer state does not fit this run ({type(exc).__name__}: {exc}); "
                        "its meta.json is damaged or from another run: resume from another checkpoint") from None


def load_weights(model: torch.nn.Module, tensors: dict[str, torch.Tensor], which: str = "ema") -> None:
    """Load EMA (default, if present) or raw weights; a shape mismatch is a UserError."""
    state = split_prefix(tensors, which) or split_prefix(tensors, "model")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        why = first[1].strip() if len(first) > 1 else first[0]
        raise UserError(f"checkpoint does not fit this model: {why}") from None


def run_name(checkpoint) -> str:
    """The run directory's name, for a run or one of its checkpoints/step_* directories."""
    ckpt = resolve_checkpoint(checkpoint).resolve()
    return (ckpt.parent.parent if ckpt.parent.name == "checkpoints" else ckpt).name


def load_task_model(checkpoint: str | Path, task: str, config_cls, build, which: str = "ema"):
    """(model in eval mode, cfg, meta) from a checkpoint written by `task`.

    The config saved in the checkpoint rebuilds the network (`build(cfg)`), so a checkpoint of
    another task, without a config, or of another shape is one clear UserError.
    """

    tensors, meta = load_checkpoint(checkpoint)
    if meta.get("task") != task:
        raise UserError(f"checkpoint {checkpoint} belongs to task {meta.get('task')!r}, not {task!r}")
    if "config" not in meta:
        raise UserError(f"checkpoint {checkpoint} has no {task} config in its metadata")
    cfg = from_dict(config_cls, meta["config"])
    model = build(cfg)
    load_weights(model, tensors, which)
    return model.eval(), cfg, meta
