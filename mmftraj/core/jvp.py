"""Backends for du/dt = ∂_z u · v + ∂_t u, the derivative of u(z_t, r, t) along the path.

`exact` uses forward-mode autodiff (torch.func.jvp, tangent (v, 0, 1)); the finite-difference
backends need only ordinary forwards, so they also run through fused attention kernels and cost
one or two extra forwards instead of a forward-mode pass. `dual` asks the model itself for
(u, du) — `model(z, r, t, tangent=(v, 0, 1))`, which the U-Net computes with ordinary ops: exact,
compilable, and safe under TF32. All are tested against `exact`.

`exact` and `dual` compute u(z, r, t) on the way; with `return_primal=True` they return (u, du),
so an objective that needs gradients through both can skip a separate forward on those rows.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..errors import choice_error

UFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def jvp_exact(fn: UFn, z, r, t, v, u=None, create_graph: bool = False, eps: float = 0.0,
              return_primal: bool = False):
    """Forward-mode JVP. With create_graph the result carries gradients to the parameters."""
    tangents = (v, torch.zeros_like(r), torch.ones_like(t))
    with torch.set_grad_enabled(create_graph and torch.is_grad_enabled()):
        pair = torch.func.jvp(fn, (z, r, t), tangents)
    return pair if return_primal else pair[1]


def _fd_steps(r, t, eps: float):
    """Steps (h₊, h₋) ≤ ε, one per row, that keep t + h₊ ≤ 1 and t - h₋ ≥ r: the path points a
    finite difference visits stay inside [r, 1], where u is defined and was trained."""
    return (1 - t).clamp(0, eps), (t - r).clamp(0, eps)


def _rows(h, z):
    return h.reshape((-1,) + (1,) * (z.dim() - 1))


def jvp_fd_central(fn: UFn, z, r, t, v, u=None, create_graph: bool = False, eps: float = 2e-3):
    """(u(z + h₊v, r, t + h₊) - u(z - h₋v, r, t - h₋)) / (h₊ + h₋), h = ε away from the ends:
    O(ε²) error in the interior, O(ε) where a side is shortened; two extra forwards."""
    hp, hm = _fd_steps(r, t, eps)
    with torch.set_grad_enabled(create_graph and torch.is_grad_enabled()):
        up = fn(z + _rows(hp, z) * v, r, t + hp)
        um = fn(z - _rows(hm, z) * v, r, t - hm)
        return (up - um) / _rows(hp + hm, z)


def jvp_fd_forward(fn: UFn, z, r, t, v, u=None, create_graph: bool = False, eps: float = 1e-3):
    """(u(z + hv, r, t + h) - u(z, r, t)) / h with h = ε, or a backward step (h < 0) where t + ε
    would pass 1: O(ε) error, one extra forward (reuses u)."""
    hp, hm = _fd_steps(r, t, eps)
    h = torch.where(hp >= hm, hp, -hm)
    with torch.set_grad_enabled(create_graph and torch.is_grad_enabled()):
        if u is None:
            u = fn(z, r, t)
        elif not create_graph:
            u = u.detach()
        return (fn(z + _rows(h, z) * v, r, t + h) - u) / _rows(h, z)


def jvp_dual(fn: UFn, z, r, t, v, u=None, create_graph: bool = False, eps: float = 0.0,
             return_primal: bool = False):
    """The model's own tangent forward: fn must accept `tangent=(dz, dr, dt)` and return (u, du)."""
    with torch.set_grad_enabled(create_graph and torch.is_grad_enabled()):
        pair = fn(z, r, t, tangent=(v, torch.zeros_like(r), torch.ones_like(t)))
    return tuple(pair) if return_primal else pair[1]


# Backends that can return (u, du) from one evaluation (`return_primal=True`).
PRIMAL_BACKENDS = frozenset({"exact", "dual"})

JVP_BACKENDS = {"exact": jvp_exact, "fd-central": jvp_fd_central, "fd-forward": jvp_fd_forward, "dual": jvp_dual}


def get_jvp_backend(name: str):
    if name not in JVP_BACKENDS:
        raise choice_error("JVP backend", name, JVP_BACKENDS)
    return JVP_BACKENDS[name]
