"""d4rl's waypoint controller for maze2d: the expert that generated the maze2d datasets.

Why reproduce it: datasets made by the same expert have the same state distribution as the
published ones. Facts carried over from d4rl (`pointmaze/waypoint_controller.py`, `q_iteration.py`):
deterministic Q-iteration on the grid (5 moves: stay, j-1, j+1, i-1, i+1 in that tie-break order;
a blocked move stays; reward 1 in the target cell; discount 0.99; 50 sweeps), a greedy rollout of at
most 100 cells gives the waypoints, every waypoint but the target is jittered by -U(0, 1) * 0.2 per
axis, and a PD law a = 10 (waypoint - pos) - vel, clipped to [-1, 1], follows them. A waypoint is
passed when the particle is within 0.1 of it and moved less than 0.1 since the last call. Cells are
found by rounding the position (d4rl's `gridify`, which ignores the -0.2 wall shift).

Q tables and cell paths are cached per target cell / (start, target) pair, and the per-step law runs
on Python floats, so the controller costs a few microseconds per step.
"""

from __future__ import annotations

import math

import numpy as np

from .layouts import Layout

MOVES = ((0, 0), (0, -1), (0, 1), (-1, 0), (1, 0))  # d4rl's NOOP, UP, DOWN, LEFT, RIGHT
SOLVE_THRESH = 0.1
VEL_THRESH = 0.1
P_GAIN = 10.0
D_GAIN = -1.0
DISCOUNT = 0.99
SWEEPS = 50
MAX_PATH = 100


def _gridify(x: float, y: float) -> tuple[int, int]:
    return int(round(x)), int(round(y))


class WaypointController:
    """Follow Q-iteration waypoints to a target cell. `rng` draws the waypoint jitter."""

    def __init__(self, layout: Layout, rng: np.random.Generator | None = None):
        self.layout = layout
        self.rng = rng if rng is not None else np.random.default_rng()
        rows, cols = layout.shape
        self._rows, self._cols = rows, cols
        n = rows * cols
        nxt = np.empty((n, len(MOVES)), dtype=np.int64)  # deterministic transition table
        for i in range(rows):
            for j in range(cols):
                s = i * cols + j
                for a, (di, dj) in enumerate(MOVES):
                    ii, jj = i + di, j + dj
                    ok = 0 <= ii < rows and 0 <= jj < cols and not layout.walls[ii, jj]
                    nxt[s, a] = ii * cols + jj if ok else s
        self._next = nxt
        self._q_cache: dict[tuple[int, int], np.ndarray] = {}
        self._path_cache: dict[tuple[tuple[int, int], tuple[int, int]], list[tuple[int, int]]] = {}
        self._target: tuple[int, int] | None = None
        self._waypoints: list[tuple[float, float]] = []
        self._idx = 0
        self._prev = (0.0, 0.0)

    # -- planning on the grid ------------------------------------------------------------------
    def q_values(self, target: tuple[int, int]) -> np.ndarray:
        """(rows*cols, 5) Q table of d4rl's Q-iteration towards `target` (cached)."""
        q = self._q_cache.get(target)
        if q is None:
            reward = np.zeros(self._next.shape[0])
            reward[target[0] * self._cols + target[1]] = 1.0
            q = np.zeros(self._next.shape, dtype=np.float64)
            for _ in range(SWEEPS):
                v = q.max(axis=1)
                q = reward[:, None] + DISCOUNT * v[self._next]
            self._q_cache[target] = q
        return q

    def cell_path(self, start: tuple[int, int], target: tuple[int, int]) -> list[tuple[int, int]]:
        """Cells visited by the greedy rollout from `start` (excluded) to `target` (included)."""
        key = (start, target)
        path = self._path_cache.get(key)
        if path is None:
            q = self.q_values(target)
            s = start[0] * self._cols + start[1]
            goal = target[0] * self._cols + target[1]
            path = []
            for _ in range(MAX_PATH):
                s = int(self._next[s, int(np.argmax(q[s]))])
                path.append(divmod(s, self._cols))
                if s == goal:
                    break
            self._path_cache[key] = path
        return path

    def _new_target(self, x: float, y: float, target: tuple[int, int]) -> None:
        start = _gridify(x, y)
        path = self.cell_path(start, target)
        jitter = self.rng.uniform(size=(len(path), 2)) * 0.2
        self._waypoints = [
            (float(c[0]), float(c[1])) if c == target else (c[0] - jitter[k, 0], c[1] - jitter[k, 1])
            for k, c in enumerate(path)
        ]
        self._idx = 0
        self._prev = (float(start[0]), float(start[1]))
        self._target = target

    # -- control -------------------------------------------------------------------------------
    def get_action(self, x: float, y: float, vx: float, vy: float, goal_x: float, goal_y: float):
        """Return (ax, ay, solved): the clipped PD action and whether the target cell is reached."""
        target = _gridify(goal_x, goal_y)
        if target != self._target:
            self._new_target(x, y, target)
        tx, ty = self._target
        dist = math.hypot(x - tx, y - ty)
        vel_norm = math.hypot(self._prev[0] - x, self._prev[1] - y)
        solved = dist < SOLVE_THRESH and vel_norm < VEL_THRESH
        wx, wy = (float(tx), float(ty)) if solved else self._waypoints[self._idx]
        ax = P_GAIN * (wx - x) + D_GAIN * vx
        ay = P_GAIN * (wy - y) + D_GAIN * vy
        if not solved and math.hypot(x - wx, y - wy) < SOLVE_THRESH and vel_norm < VEL_THRESH:
            self._idx += 1
        self._prev = (x, y)
        ax = -1.0 if ax < -1.0 else (1.0 if ax > 1.0 else ax)
        ay = -1.0 if ay < -1.0 else (1.0 if ay > 1.0 else ay)
        return ax, ay, solved

    def __call__(self, obs, goal) -> np.ndarray:
        """Convenience: action array for an observation (x, y, vx, vy) and a goal (x, y)."""
        ax, ay, _ = self.get_action(float(obs[0]), float(obs[1]), float(obs[2]), float(obs[3]),
                                    float(goal[0]), float(goal[1]))
        return np.array([ax, ay])
