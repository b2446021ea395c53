"""The d4rl waypoint controller: grid planning facts and closed-loop success rate."""

import numpy as np
import pytest

from mmftraj.envs import WaypointController, load_layout, make_maze2d


def bfs_distance(layout, start, target):
    from collections import deque

    dist = {start: 0}
    queue = deque([start])
    while queue:
        c = queue.popleft()
        for d in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            n = (c[0] + d[0], c[1] + d[1])
            if layout.in_bounds(n) and not layout.walls[n] and n not in dist:
                dist[n] = dist[c] + 1
                queue.append(n)
    return dist[target]


@pytest.mark.parametrize("name", ["umaze", "medium", "large"])
def test_q_iteration_paths_are_shortest(name):
    lay = load_layout(name)
    ctrl = WaypointController(lay, rng=np.random.default_rng(0))
    cells = lay.free_cells
    for s in cells[::3]:
        for t in cells[::2]:
            path = ctrl.cell_path(s, t)
            assert path[-1] == t
            assert len(path) == max(bfs_distance(lay, s, t), 1)
            steps = np.abs(np.diff(np.array([s, *path]), axis=0)).sum(axis=1)
            assert np.all(steps <= 1) and not any(lay.walls[c] for c in path)


@pytest.mark.parametrize("name,steps", [("maze2d-umaze-v1", 300), ("maze2d-medium-v1", 600), ("maze2d-large-v1", 800)])
def test_reaches_random_goals(name, steps):
    env = make_maze2d(name)
    rng = np.random.default_rng(1)
    cells = env.layout.free_cells
    pairs, reached = 40, 0
    for k in range(pairs):
        start = np.array(cells[rng.integers(len(cells))]) + rng.uniform(-0.1, 0.1, 2)
        goal = np.array(cells[rng.integers(len(cells))]) + rng.uniform(-0.1, 0.1, 2)
        ctrl = WaypointController(env.layout, rng=np.random.default_rng(k))
        obs, _ = env.reset(seed=k, options={"start": start, "goal": goal})
        for _ in range(steps):
            obs, r, *_ = env.step(ctrl(obs, goal))
            if r > 0:
                reached += 1
                break
    assert reached >= 0.95 * pairs


def test_pd_law_and_jitter():
    lay = load_layout("umaze")
    ctrl = WaypointController(lay, rng=np.random.default_rng(0))
    ax, ay, solved = ctrl.get_action(3.0, 1.0, 0.5, -0.2, 1.0, 1.0)
    wx, wy = ctrl._waypoints[0]
    assert not solved and 2.8 <= wx <= 3.0 and 1.8 <= wy <= 2.0  # first cell (3, 2), jittered by -U(0, .2)
    assert ax == pytest.approx(np.clip(10 * (wx - 3.0) - 0.5, -1, 1))
    assert ay == pytest.approx(np.clip(10 * (wy - 1.0) + 0.2, -1, 1))
    assert ctrl._waypoints[-1] == (1.0, 1.0)  # the target cell itself is never jittered
