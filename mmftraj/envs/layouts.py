"""Maze layouts as text, and the grid geometry every maze2d user needs (env, controller, planner, plots).

A layout file has one maze row per line: '#' wall, 'O' (or '0' or ' ') free, 'G' the goal cell (at
most one; without one the goal is the first free cell, as d4rl did). Row i, column j is cell (i, j).

Coordinates follow d4rl's quirk: the state (qpos) of a particle in cell (i, j) is (i, j) at the cell
centre used for resets, goals and waypoints, but the wall boxes of the MuJoCo model sit at world
(i + 1, j + 1) while the particle body sits at world (1.2, 1.2). In qpos coordinates a cell therefore
spans [i - 0.7, i + 0.3] x [j - 0.7, j + 0.3]; `xy_to_cell` and `is_free` use that true geometry.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import UserError, choice_error
from ..resources import resource_path

WALL, FREE, GOAL = "#", "O", "G"
_FREE_TILES = {"O", "0", " "}
WALL_OFFSET = 0.2  # walls appear shifted by -0.2 in qpos coordinates (body at 1.2, walls at i + 1)
WALL_HALF = 0.5
PARTICLE_RADIUS = 0.1

BUILTIN = ("open", "umaze", "medium", "large", "eval-umaze", "eval-medium", "eval-large")


def cells_of(xy) -> np.ndarray:
    """(…, 2) qpos positions → (…, 2) integer cells: the cell squares sit WALL_OFFSET below the
    cell centres (vectorized `Layout.xy_to_cell`)."""
    return np.floor(np.asarray(xy, dtype=np.float64) + WALL_OFFSET + 0.5).astype(np.int64)


@dataclass(frozen=True)
class Layout:
    """A parsed maze: `walls[i, j]` is True for a wall cell; `goal_cell` is the 'G' cell."""

    name: str
    walls: np.ndarray  # bool (rows, cols)
    goal_cell: tuple[int, int]

    @property
    def shape(self) -> tuple[int, int]:
        return self.walls.shape

    @cached_property
    def free_cells(self) -> list[tuple[int, int]]:
        """Free cells in d4rl's reset order: the non-goal cells sorted, then the goal cell."""
        cells = sorted((int(i), int(j)) for i, j in zip(*np.nonzero(~self.walls), strict=False))
        cells.remove(self.goal_cell)
        return cells + [self.goal_cell]

    def text(self) -> str:
        rows = []
        for i in range(self.walls.shape[0]):
            row = "".join(WALL if w else FREE for w in self.walls[i])
            if i == self.goal_cell[0]:
                j = self.goal_cell[1]
                row = row[:j] + GOAL + row[j + 1 :]
            rows.append(row)
        return "\n".join(rows) + "\n"

    def cell_to_xy(self, cell) -> np.ndarray:
        """qpos (x, y) of a cell's centre (as used for resets, goals and waypoints)."""
        return np.asarray(cell, dtype=np.float64).copy()

    def xy_to_cell(self, xy) -> tuple[int, int]:
        """The cell whose square (in qpos coordinates, walls shifted by -0.2) contains `xy`."""
        i, j = cells_of(np.asarray(xy, dtype=np.float64)[:2])
        return int(i), int(j)

    def in_bounds(self, cell) -> bool:
        i, j = cell
        return 0 <= i < self.walls.shape[0] and 0 <= j < self.walls.shape[1]

    def blocked(self, xy) -> np.ndarray:
        """Boolean per (…, 2) qpos position: inside a wall square or outside the maze."""
        cells = cells_of(xy)
        rows, cols = self.walls.shape
        inside = (cells[..., 0] >= 0) & (cells[..., 0] < rows) & (cells[..., 1] >= 0) & (cells[..., 1] < cols)
        return ~inside | self.walls[np.clip(cells[..., 0], 0, rows - 1), np.clip(cells[..., 1], 0, cols - 1)]

    def is_free(self, xy) -> bool:
        """True when `xy` (qpos) lies inside the maze and not inside a wall square."""
        return not bool(self.blocked(np.asarray(xy, dtype=np.float64)[:2]))

    def free_share(self, xy: np.ndarray) -> float:
        """Share of the points `xy` (n, 2; qpos) that are free: about 1 for data recorded in this
        maze, well below it for another maze's data."""
        return 1.0 - float(self.blocked(xy).mean()) if len(xy) else 1.0

    def wall_boxes(self) -> np.ndarray:
        """(n, 4) array of wall squares as (x_min, y_min, x_max, y_max) in qpos coordinates."""
        ij = np.argwhere(self.walls).astype(np.float64) - WALL_OFFSET
        return np.concatenate([ij - WALL_HALF, ij + WALL_HALF], axis=1)


def parse_layout(text: str, name: str = "<layout>") -> Layout:
    """Parse layout text; bad tiles, ragged rows and layouts without a free cell are UserErrors."""
    lines = text.split("\n")
    while lines and lines[-1].strip() == "":
        lines.pop()
    if not lines:
        raise UserError(f"{name}: empty layout (need rows of '#', 'O' and at most one 'G')")
    width = len(lines[0])
    walls = np.zeros((len(lines), width), dtype=bool)
    goals = []
    for i, line in enumerate(lines):
        if len(line) != width:
            col = min(len(line), width) + 1
            raise UserError(
                f"{name}: line {i + 1}, column {col}: row has {len(line)} tiles but line 1 has {width} "
                "(all rows must have the same length)"
            )
        for j, ch in enumerate(line):
            if ch == WALL:
                walls[i, j] = True
            elif ch == GOAL:
                goals.append((i, j))
            elif ch not in _FREE_TILES:
                raise UserError(
                    f"{name}: line {i + 1}, column {j + 1}: unknown tile {ch!r} "
                    "(use '#' wall, 'O' free, 'G' goal)"
                )
    if walls.all():
        raise UserError(f"{name}: line 1, column 1: the layout has no free cell ('O' or 'G')")
    if len(goals) > 1:
        (i, j) = goals[1]
        raise UserError(f"{name}: line {i + 1}, column {j + 1}: a second goal 'G' (at most one allowed)")
    goal = goals[0] if goals else min((int(i), int(j)) for i, j in zip(*np.nonzero(~walls), strict=False))
    return Layout(name=name, walls=walls, goal_cell=goal)


def load_layout(name_or_path: str | Path) -> Layout:
    """A built-in layout by name (umaze, medium, large, open, eval-*) or a user layout file."""
    key = str(name_or_path)
    if key in BUILTIN:
        path = resource_path("envs", "maze2d", f"{key}.txt")
        return parse_layout(path.read_text(), name=key)
    path = Path(name_or_path)
    if path.suffix or path.exists() or "/" in key:
        if not path.is_file():
            raise UserError(f"layout file not found: {path}")
        return parse_layout(path.read_text(), name=str(path))
    raise choice_error("maze layout", key, BUILTIN)


def as_layout(layout: str | Path | Layout) -> Layout:
    """`layout` itself, or the layout a name or file names (load_layout)."""
    return layout if isinstance(layout, Layout) else load_layout(layout)
