"""Configs are data: typed dataclasses, loaded from YAML, overridable with `key.sub=value` strings.

Strictness is the point: an unknown key or a value of the wrong type is a UserError that names
the valid keys, so a typo in a config never silently falls back to a default.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from .errors import UserError
from .io import atomic_write_text


def _field_types(cls) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _coerce(value: Any, tp: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise UserError(f"config {where}: expected a mapping, got {value!r}")
        return from_dict(tp, value, prefix=where + ".")
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except UserError:
                continue
        raise UserError(f"config {where}: {value!r} does not fit {tp}")
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise UserError(f"config {where}: {value!r} is not one of {', '.join(map(str, allowed))}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise UserError(f"config {where}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        inner = args[0] if args else Any
        items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, dict):
            raise UserError(f"config {where}: expected a mapping, got {value!r}")
        return dict(value)
    if tp is Any:
        return value
    if tp is float:
        if isinstance(value, str):  # YAML 1.1 reads "3e-4" as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"config {where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise UserError(f"config {where}: expected an integer, got {value!r}")
        return int(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise UserError(f"config {where}: expected true/false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise UserError(f"config {where}: expected a string, got {value!r}")
        return str(value)
    return value


def from_dict(cls, data: dict, prefix: str = ""):
    """Build dataclass `cls` from a (nested) dict, refusing unknown keys and ill-typed values."""
    types_ = _field_types(cls)
    unknown = set(data) - set(types_)
    if unknown:
        key = sorted(unknown)[0]
        raise UserError(
            f"unknown config key {prefix}{key!r}; valid keys: {', '.join(prefix + k for k in types_)}"
        )
    kwargs = {k: _coerce(v, types_[k], prefix + k) for k, v in data.items()}
    return cls(**kwargs)


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def check_eval_overrides(overrides, allowed: tuple[str, ...] = ("eval.",), what: str = "only eval.* overrides",
                         command: str = "eval") -> None:
    """`eval` re-scores a trained model: settings that would change the model or its data are refused."""
    bad = [o for o in overrides if not o.strip().startswith(allowed)]
    if bad:
        raise UserError(f"{command} accepts {what}, got {bad[0]!r}")


def apply_overrides(cfg, overrides: list[str]):
    """Return a copy of `cfg` with `a.b.c=value` overrides applied (values parsed as YAML)."""
    data = to_dict(cfg)
    for item in overrides:
        if "=" not in item:
            raise UserError(f"override {item!r} must look like key=value (e.g. train.lr=3e-4)")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError as err:
            where = getattr(err, "problem", None) or "not valid YAML"
            raise UserError(f"--set {item}: the value {raw!r} is {where} (quote strings: key='text')") from None
        node = data
        parts = key.strip().split(".")
        for depth, part in enumerate(parts[:-1]):
            if not isinstance(node, dict) or part not in node or not isinstance(node[part], dict):
                valid = [k for k, v in node.items() if isinstance(v, dict)] if isinstance(node, dict) else []
                raise UserError(
                    f"unknown config section {'.'.join(parts[: depth + 1])!r}; valid sections: {', '.join(valid)}"
                )
            node = node[part]
        if parts[-1] not in node:
            prefix = ".".join(parts[:-1])
            prefix = prefix + "." if prefix else ""
            raise UserError(f"unknown config key {key!r}; valid keys: {', '.join(prefix + k for k in node)}")
        node[parts[-1]] = value
    return from_dict(type(cfg), data)


def merge_dict(cfg, data: dict):
    """Overlay a nested dict (e.g. a YAML file) on an existing config, strictly."""
    base = to_dict(cfg)

    def deep(dst: dict, src: dict, prefix: str):
        for k, v in src.items():
            if k not in dst:
                raise UserError(f"unknown config key {prefix + k!r}; valid keys: {', '.join(prefix + x for x in dst)}")
            if isinstance(v, dict) and isinstance(dst[k], dict):
                deep(dst[k], v, prefix + k + ".")
            else:
                dst[k] = v

    deep(base, data or {}, "")
    return from_dict(type(cfg), base)


def load_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"config file {path} is not UTF-8 text") from None
    except yaml.YAMLError as exc:
        raise UserError(f"config file {path} is not valid YAML: {exc}".splitlines()[0]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"config file {path} must hold a mapping at the top level")
    return data


def save_yaml(cfg, path: str | Path) -> None:
    atomic_write_text(Path(path), yaml.safe_dump(to_dict(cfg), sort_keys=False))
