"""Push-T in gym-pusht, observed and started the way Diffusion Policy evaluates it.

gym-pusht has Diffusion Policy's physics but differs in three ways this module makes up for:
- **Starts.** Diffusion Policy's test start of seed s is drawn by `numpy.random.RandomState(s)`:
  agent x, y ∈ randint(50, 450), block x, y ∈ randint(100, 400), θ = randn·2π − π (`dp_start`).
- **Setting a state.** gym-pusht sets the block's position before its angle, and the block turns
  about its centre of gravity c = (0, 45) in its own frame, so the body lands at
  p + c − R(θ)c. `reset_state` passes p = (x, y) − c + R(θ)c so the block sits exactly at the
  recorded or drawn pose (replayed demonstrations then match their records to ~1e-4 px).
- **Observation.** Diffusion Policy's low-dimensional observation is the block's nine keypoints
  (fixed points in its frame, `LOCAL_KEYPOINTS`, recovered from the demonstrations' records to
  0.03 px) followed by the agent's x, y: 20 numbers (`observe`).
"""

from __future__ import annotations

import os
import warnings

import numpy as np

from ..errors import UserError

BLOCK_COG = np.array([0.0, 45.0])
# The block's nine keypoints in its own frame (px), as Diffusion Policy's keypoint observation uses them.
LOCAL_KEYPOINTS = np.array([
    [9.269, 90.023], [-60.992, -1.187], [60.907, -1.393], [-0.270, 25.544], [-14.064, 122.811],
    [39.000, 32.861], [-39.955, 32.734], [-16.822, 62.872], [23.541, -1.700],
])
OBS_DIM = 2 * len(LOCAL_KEYPOINTS) + 2
MAX_STEPS = 300  # Diffusion Policy's and gym-pusht's episode length (10 Hz actions)
SUCCESS_COVERAGE = 0.95


def require_gym_pusht():
    """The gym-pusht environment class, or one line saying how to install it."""
    try:
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")  # pygame draws off screen
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from gym_pusht.envs.pusht import PushTEnv
    except ImportError as exc:
        raise UserError(f"the Push-T environment needs gym-pusht ({exc.name or exc} is missing): "
                        "pip install 'mmftraj[pusht]'") from None
    return PushTEnv


def dp_start(seed: int) -> np.ndarray:
    """Diffusion Policy's start state (agent x, y, block x, y, θ) for env seed `seed`."""
    rs = np.random.RandomState(seed=seed)
    return np.array([rs.randint(50, 450), rs.randint(50, 450), rs.randint(100, 400), rs.randint(100, 400),
                     rs.randn() * 2 * np.pi - np.pi], dtype=np.float64)


def rotation(theta) -> np.ndarray:
    """R(θ) of shape (..., 2, 2)."""
    c, s = np.cos(theta), np.sin(theta)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def reset_state(state: np.ndarray) -> np.ndarray:
    """What to pass gym-pusht's `reset_to_state` so the block's body sits at state[2:4], angle state[4]."""
    state = np.asarray(state, dtype=np.float64)
    p = state[2:4] - BLOCK_COG + rotation(state[4]) @ BLOCK_COG
    return np.array([state[0], state[1], p[0], p[1], state[4]])


def keypoints(block_pose: np.ndarray) -> np.ndarray:
    """World keypoints (..., 9, 2) of block poses (..., 3) = x, y, θ."""
    pose = np.asarray(block_pose, dtype=np.float64)
    return np.einsum("...ij,kj->...ki", rotation(pose[..., 2]), LOCAL_KEYPOINTS) + pose[..., None, :2]


def observe(state: np.ndarray) -> np.ndarray:
    """Diffusion Policy's observation (..., 20): nine block keypoints then the agent's x, y."""
    state = np.asarray(state, dtype=np.float64)
    kp = keypoints(state[..., 2:5]).reshape(*state.shape[:-1], -1)
    return np.concatenate([kp, state[..., :2]], axis=-1)


class PushTBatch:
    """`n` gym-pusht envs stepped together; what a policy evaluated in a batch needs.

    `reset(starts)` places them; `step(actions)` moves the live ones, and each keeps its best
    reward (Diffusion Policy scores an episode by its maximum) and whether it reached 95 % coverage.
    Episodes end at success or after MAX_STEPS actions. The first `render` envs keep their frames."""

    def __init__(self, n: int, render: int = 0, frame_size: int = 192):
        env_cls = require_gym_pusht()
        self.envs = [env_cls(obs_type="state", render_mode="rgb_array", visualization_width=frame_size,
                             visualization_height=frame_size) for _ in range(n)]
        self.render = min(render, n)  # the first `render` envs keep a frame per step
        self.frames: list[list[np.ndarray]] = [[] for _ in range(self.render)]

    def reset(self, starts: np.ndarray) -> np.ndarray:
        """Start every env at its (agent x, y, block x, y, θ); returns their states (n, 5)."""
        states = [env.reset(options={"reset_to_state": reset_state(s)})[0] for env, s in zip(self.envs, starts,
                                                                                                 strict=True)]
        n = len(self.envs)
        self.best = np.zeros(n)
        self.success = np.zeros(n, dtype=bool)
        self.steps = np.zeros(n, dtype=np.int64)
        self.done = np.zeros(n, dtype=bool)
        self.state = np.asarray(states, dtype=np.float64)
        self.frames = [[env.render()] for env in self.envs[: self.render]]
        return self.state.copy()

    def step(self, actions: np.ndarray) -> np.ndarray:
        """Apply one action (n, 2) to every live env; returns the states (n, 5)."""
        for i, env in enumerate(self.envs):
            if self.done[i]:
                continue
            state, reward, terminated, _, _ = env.step(np.asarray(actions[i], dtype=np.float64))
            self.state[i] = state
            self.best[i] = max(self.best[i], float(reward))
            self.steps[i] += 1
            self.success[i] |= bool(terminated)
            self.done[i] = bool(terminated) or self.steps[i] >= MAX_STEPS
            if i < self.render:
                self.frames[i].append(env.render())
        return self.state.copy()

    def close(self) -> None:
        for env in self.envs:
            env.close()
