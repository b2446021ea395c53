"""Data shipped inside the package: preset YAML (`configs/`), maze layouts and splits (`envs/`)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def resource_path(*parts: str) -> Path:
    return ROOT.joinpath(*parts)
