"""A synthetic planar gait table: the motion task's embedded default, generated in process.

Each episode is a walker seen from above, starting at the origin: it heads in a random direction,
turns slowly, and its velocity has the rhythm of a gait, a forward speed that pulses twice per
stride cycle and a sideways sway once per cycle. Walking and running differ in speed, cadence and
sway, so the data is multi-modal in a way one-step generators often blur. Columns follow the
trajectory-table layout (mmftraj.data.tables): `episode` (`walk_0003`, `run_0004`, ...), `t` in
seconds, states `s_x, s_y` (metres), actions `a_vx, a_vy` (the velocity driving the next step).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

GAITS = {
    # speed m/s, cadence Hz (stride cycles per second), sway amplitude m
    "walk": dict(speed=(1.0, 1.6), cadence=(0.8, 1.0), sway=(0.03, 0.05)),
    "run": dict(speed=(2.6, 3.4), cadence=(1.3, 1.5), sway=(0.01, 0.02)),
}


def gait_table(episodes: int = 1024, steps: int = 64, dt: float = 0.05, seed: int = 0):
    """A pandas DataFrame of `episodes` episodes (half walking, half running) of `steps` rows."""

    rng = np.random.default_rng(seed)
    t = np.arange(steps) * dt
    frames = []
    for k in range(episodes):
        gait = "walk" if k % 2 == 0 else "run"
        spec = GAITS[gait]
        speed, cadence, sway = (rng.uniform(*spec[key]) for key in ("speed", "cadence", "sway"))
        phase = rng.uniform(0, 2 * np.pi)
        heading = rng.uniform(0, 2 * np.pi) + rng.normal(0, 0.3) * t  # slow, steady turn
        forward = speed * (1 + 0.1 * np.sin(4 * np.pi * cadence * t + 2 * phase))
        sideways = sway * 2 * np.pi * cadence * np.cos(2 * np.pi * cadence * t + phase)
        vx = forward * np.cos(heading) - sideways * np.sin(heading)
        vy = forward * np.sin(heading) + sideways * np.cos(heading)
        x = np.concatenate([[0.0], np.cumsum(vx[:-1]) * dt])
        y = np.concatenate([[0.0], np.cumsum(vy[:-1]) * dt])
        frames.append(pd.DataFrame({"episode": f"{gait}_{k:04d}", "t": t, "s_x": x, "s_y": y,
                                    "a_vx": vx, "a_vy": vy}))
    return pd.concat(frames, ignore_index=True)
