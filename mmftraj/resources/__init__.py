"""Data shipped inside the package. `configs` (preset YAML) and `envs` (maze layouts, splits,
PointMaze reference returns) are links to the repository's top-level `configs/` and `envs/`, the
one source the design card names; building a wheel copies their files in, so an installed package
has them too (tests/test_wheel.py). `data/` holds the shipped Push-T demonstrations."""

from pathlib import Path

ROOT = Path(__file__).resolve().parent


def resource_path(*parts: str) -> Path:
    return ROOT.joinpath(*parts)
