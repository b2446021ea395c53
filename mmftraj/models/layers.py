"""Layers that stay correct under forward-mode autodiff *and* a backward pass through it.

torch 2.13's fused `nn.LayerNorm` gives correct JVP values, but the gradient of those JVPs with
respect to the parameters is wrong (≈5% relative error against a double-backward reference;
see tests/test_layers.py). The MMF loss with λ > 0 and the exact JVP backend needs exactly that
gradient, so every network here normalises with this composite LayerNorm instead.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class LayerNorm(nn.Module):
    """LayerNorm over the last dimension, written with mean/variance primitives."""

    def __init__(self, dim: int, eps: float = 1e-5, elementwise_affine: bool = True):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim)) if elementwise_affine else None
        self.bias = nn.Parameter(torch.zeros(dim)) if elementwise_affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        centred = x - x.mean(-1, keepdim=True)
        out = centred * torch.rsqrt(centred.pow(2).mean(-1, keepdim=True) + self.eps)
        if self.weight is not None:
            out = out * self.weight + self.bias
        return out


class SwitchableAttention:
    """Mixin for networks with an `attention_backend` property ("math" | "fast").

    `use_attention` switches temporarily; `jvp_safe` forces the math path, the one that works
    under forward-mode autodiff (fused SDPA kernels do not).
    """

    @contextlib.contextmanager
    def use_attention(self, name: str) -> Iterator[None]:
        previous = self.attention_backend
        self.attention_backend = name
        try:
            yield
        finally:
            self.attention_backend = previous

    def jvp_safe(self):
        return self.use_attention("math")
