"""The 2-D toy distributions, their modes, and finite or mode-restricted training sets.

Why modes and finite sets: the paper's generalization claims (low data, out of distribution) are
cheapest to test where one-step quality differs between objectives, and toy2d is that place.
`size` turns the endless stream of fresh points into a fixed training set (nested: every smaller
set is a prefix of the larger ones for one seed); `hold_out` removes whole modes from training.
"""

from __future__ import annotations

import math

import torch

from ..errors import UserError, choice_error

DISTRIBUTIONS = ("checkerboard", "eight_gaussians", "two_moons", "gaussian")
MODES = {"checkerboard": 8, "eight_gaussians": 8}  # distributions with numbered modes
CHUNK = 4096  # points drawn per round when modes are held out (fixed, so training sets nest)


def sample_data(name: str, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw n points of a named 2-D distribution (roughly within [-3, 3]²); (n, 2)."""
    g = generator
    if name == "checkerboard":
        x1 = torch.rand(n, generator=g) * 4 - 2
        x2 = torch.rand(n, generator=g) - torch.randint(0, 2, (n,), generator=g).float() * 2
        x2 = x2 + (torch.floor(x1) % 2)
        return torch.stack([x1, x2], 1) * 1.0
    if name == "eight_gaussians":
        k = torch.randint(0, 8, (n,), generator=g).float()
        centres = torch.stack([torch.cos(k * math.pi / 4), torch.sin(k * math.pi / 4)], 1) * 2.0
        return centres + 0.15 * torch.randn(n, 2, generator=g)
    if name == "two_moons":
        which = torch.randint(0, 2, (n,), generator=g).float()
        angle = torch.rand(n, generator=g) * math.pi
        upper = torch.stack([torch.cos(angle), torch.sin(angle)], 1)
        lower = torch.stack([1 - torch.cos(angle), 0.5 - torch.sin(angle)], 1)
        pts = torch.where(which[:, None] > 0, upper, lower)
        return (pts - torch.tensor([0.5, 0.25])) * 1.5 + 0.05 * torch.randn(n, 2, generator=g)
    if name == "gaussian":
        return torch.tensor([1.0, -0.5]) + torch.randn(n, 2, generator=g) @ torch.tensor([[1.0, 0.0], [0.6, 0.5]])
    raise choice_error("toy2d distribution", name, DISTRIBUTIONS)


def mode_of(name: str, points: torch.Tensor) -> torch.Tensor:
    """The mode each point belongs to, (n,) int64; -1 for points in no mode.

    checkerboard: the 8 filled unit squares of [-2, 2]², numbered 2·(column) + (upper half), column
    0–3 from the left; a point outside the board or in an empty square is -1.
    eight_gaussians: the nearest of the 8 centres, 0 at (2, 0) and counterclockwise."""
    if name == "checkerboard":
        i, j = torch.floor(points[:, 0]), torch.floor(points[:, 1])
        inside = (i >= -2) & (i <= 1) & (j >= -2) & (j <= 1) & ((i + j) % 2 == 0)
        mode = 2 * (i + 2) + (j >= 0).float()
        return torch.where(inside, mode, torch.full_like(mode, -1)).long()
    if name == "eight_gaussians":
        angle = torch.atan2(points[:, 1], points[:, 0])
        return torch.round(angle / (math.pi / 4)).long() % 8
    raise UserError(f"toy2d distribution {name!r} has no numbered modes; these do: {', '.join(MODES)}")


def check_hold_out(name: str, hold_out: list[int]) -> None:
    if not hold_out:
        return
    if name not in MODES:
        raise UserError(f"data.hold_out needs a distribution with numbered modes ({', '.join(MODES)}), got {name!r}")
    bad = [m for m in hold_out if not 0 <= m < MODES[name]]
    if bad:
        raise UserError(f"data.hold_out: {name} has modes 0-{MODES[name] - 1}, got {bad}")
    if len(set(hold_out)) >= MODES[name]:
        raise UserError(f"data.hold_out leaves no mode of {name} to train on")


def draw(name: str, n: int, generator: torch.Generator, hold_out: list[int] = ()) -> torch.Tensor:
    """n points of the distribution without the held-out modes; (n, 2). With modes held out,
    points come in fixed chunks of CHUNK from the generator, so a larger n extends a smaller one."""
    if not hold_out:
        return sample_data(name, n, generator)
    check_hold_out(name, list(hold_out))
    banned = torch.tensor(sorted(set(hold_out)))
    kept, have = [], 0
    while have < n:
        pts = sample_data(name, CHUNK, generator)
        pts = pts[~torch.isin(mode_of(name, pts), banned)]
        kept.append(pts)
        have += len(pts)
    return torch.cat(kept)[:n]


def training_set(name: str, size: int, seed: int, hold_out: list[int] = ()) -> torch.Tensor:
    """A fixed training set of `size` points; (size, 2). One seed gives nested sets: the first
    `size` points of one stream (drawn in chunks of CHUNK, so the prefix does not depend on size)."""
    if size < 1:
        raise UserError(f"data.size must be at least 1 for a fixed training set (0: fresh points), got {size}")
    g = torch.Generator().manual_seed(seed)
    chunks, have = [], 0
    while have < size:
        chunks.append(draw(name, CHUNK, g, hold_out))
        have += CHUNK
    return torch.cat(chunks)[:size]
