"""Data shipped inside the package: `configs/` and `envs/` of the repository (linked here)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def resource_path(*parts: str) -> Path:
    return ROOT.joinpath(*parts)
