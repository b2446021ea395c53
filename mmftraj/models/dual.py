"""Tangent-carrying versions of the U-Net's layers: each takes (x, dx) and returns (y, dy).

Why: torch.func.jvp does not compile here. A compiled model called under it runs eager (dynamo
refuses functorch transforms entered from eager code), and compiling a function that calls it
fails inside group_norm under fake tensors (torch 2.13). A finite difference compiles, but loses
precision to TF32 tensor cores (benchmarks/images.md). Written with ordinary ops, the tangent
forward is exact, compiles like any forward and back-propagates with ordinary autograd. Its
convolutions of the tangent have no cancellation, so TF32 rounds them like any other activation.

A `dx` of None means a zero tangent; helpers then skip the tangent work and return None.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

Pair = tuple[torch.Tensor, torch.Tensor | None]


def affine(module: nn.Module, x: torch.Tensor, dx: torch.Tensor | None) -> Pair:
    """Conv2d or Linear: the tangent goes through the weight only (no bias)."""
    y = module(x)
    if dx is None:
        return y, None
    if isinstance(module, nn.Conv2d):
        return y, module._conv_forward(dx, module.weight, None)
    return y, F.linear(dx, module.weight)


def silu(x: torch.Tensor, dx: torch.Tensor | None) -> Pair:
    if dx is None:
        return F.silu(x), None
    s = torch.sigmoid(x)
    return x * s, dx * (s * (1 + x * (1 - s)))


def group_norm(norm: nn.GroupNorm, x: torch.Tensor, dx: torch.Tensor | None) -> Pair:
    """GroupNorm: d x̂ = (dxc − x̂·mean(x̂·dxc)) / σ with dxc the group-centred tangent."""
    if dx is None:
        return norm(x), None
    b, groups = x.shape[0], norm.num_groups
    xs, dxs = x.reshape(b, groups, -1), dx.reshape(b, groups, -1)
    # var_mean, not mean then mean of squares: torch 2.13's inductor back-propagated the latter
    # wrongly once the tangent was masked by dropout (CPU; the slow test in test_unet.py fails).
    var, mean = torch.var_mean(xs, -1, keepdim=True, correction=0)
    rstd = torch.rsqrt(var + norm.eps)
    xhat = (xs - mean) * rstd
    dcentred = dxs - dxs.mean(-1, keepdim=True)
    dxhat = rstd * (dcentred - xhat * (xhat * dcentred).mean(-1, keepdim=True))
    shape = (1, -1) + (1,) * (x.dim() - 2)
    weight, bias = norm.weight.view(shape), norm.bias.view(shape)
    return xhat.reshape(x.shape) * weight + bias, dxhat.reshape(x.shape) * weight


def linear_map(fn, x: torch.Tensor, dx: torch.Tensor | None) -> Pair:
    """Any map that is linear in x (resampling, masking, reshaping): the tangent takes it too."""
    return fn(x), (None if dx is None else fn(dx))


def add(a: torch.Tensor | None, b: torch.Tensor | None) -> torch.Tensor | None:
    if a is None:
        return b
    return a if b is None else a + b


def scale(a: torch.Tensor | None, factor: float) -> torch.Tensor | None:
    return None if a is None else a * factor


def attention(q, k, v, dq, dk, dv, score_scale: float) -> Pair:
    """softmax(q kᵀ·score_scale) v and its tangent: dP = P ⊙ (dS − rowsum(P ⊙ dS))."""
    p = ((q @ k.transpose(-2, -1)) * score_scale).softmax(dim=-1)
    ds = (dq @ k.transpose(-2, -1) + q @ dk.transpose(-2, -1)) * score_scale
    dp = p * (ds - (p * ds).sum(-1, keepdim=True))
    return p @ v, dp @ v + p @ dv
