"""Temporal transformer u_θ(z, r, t, cond) over trajectory windows z of shape (B, H, D).

DiT-style: tokens are groups of `patch` consecutive time steps, pre-norm blocks whose LayerNorms
are modulated (shift, scale, gate) by one conditioning vector = embed(t, t − r) [+ embed(cond)].
Every gate and the output layer start at zero, so u ≡ 0 at initialisation.

Attention has two paths with the same weights:
  "math"  explicit softmax(q kᵀ/√d) v; works under forward-mode AD (torch.func.jvp) and double
          backward, so the `exact` JVP backend needs it;
  "fast"  F.scaled_dot_product_attention (fused kernels, no forward-mode AD); fine for inference
          and for training with the finite-difference JVP backends (ordinary forwards only).
Pick one with `model.attention_backend = "fast"` (or TransformerConfig.attention). Safety: inside
`with model.jvp_safe():` the math path is forced; that explicit flag is the supported way for
callers that take forward-mode derivatives. As a backstop the fast path also falls back to math
when its input carries a forward-mode tangent (torch.func.jvp or torch.autograd.forward_ad), so an
unmodified caller cannot crash it — this check relies on forward_ad.unpack_dual and is a guard,
not the contract.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Literal

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch import nn

from ..errors import UserError, choice_error
from .embeddings import TimeEmbedding, sinusoidal_positions
from .layers import LayerNorm, SwitchableAttention

ATTENTION_BACKENDS = ("math", "fast")


@dataclass
class TransformerConfig:
    """Shape and size of a temporal transformer. dim_in = state + action dims per time step."""

    horizon: int = 64
    dim_in: int = 6
    width: int = 256
    depth: int = 4
    heads: int = 4
    patch: int = 1
    cond_dim: int = 0  # 0: unconditional (cond must be None)
    mlp_ratio: float = 4.0
    dropout: float = 0.0
    pos_emb: Literal["learned", "sinusoidal"] = "learned"
    attention: Literal["math", "fast"] = "math"
    time_freq_dim: int = 128
    time_max_freq: float = 16.0  # low frequencies keep finite-difference JVPs accurate


# Two sizes people actually run: ~5M parameters, and a laptop-CPU preset (~1M).
PRESETS = {
    "base": dict(width=256, depth=4, heads=4),
    "cpu": dict(width=128, depth=4, heads=4),
}


def preset_config(name: str, horizon: int, dim_in: int, **overrides) -> TransformerConfig:
    """TransformerConfig from a named size preset plus task shape and any overrides."""
    if name not in PRESETS:
        raise choice_error("transformer preset", name, PRESETS)
    return TransformerConfig(horizon=horizon, dim_in=dim_in, **{**PRESETS[name], **overrides})


def check_task_sizes(horizon: int, width: int, depth: int, heads: int, patch: int) -> None:
    """One-line errors, naming the config fields, for sizes a task's transformer cannot have."""

    if horizon < 1:
        raise UserError(f"data.horizon must be at least 1, got {horizon}")
    for name, value in (("width", width), ("depth", depth), ("heads", heads), ("patch", patch)):
        if value < 1:
            raise UserError(f"model.{name} must be at least 1, got {value}")
    if horizon % patch:
        raise UserError(f"data.horizon {horizon} must be divisible by model.patch {patch}")
    if width % heads:
        raise UserError(f"model.width {width} must be divisible by model.heads {heads}")


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _has_forward_tangent(x: torch.Tensor) -> bool:
    return fwAD.unpack_dual(x).tangent is not None


class Attention(nn.Module):
    """Bidirectional multi-head self-attention with a selectable math / fused path."""

    def __init__(self, width: int, heads: int, backend: str = "math"):
        super().__init__()
        if width % heads:
            raise ValueError(f"width {width} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.backend = backend

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, w = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, w // self.heads).permute(2, 0, 3, 1, 4)
        if self.backend == "fast" and not _has_forward_tangent(q):
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(q.shape[-1]))
            out = scores.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(b, n, w))


def _modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale[:, None, :]) + shift[:, None, :]


class Block(nn.Module):
    """Pre-norm transformer block with adaLN-Zero: the gates start at 0, so the block starts as identity."""

    def __init__(self, width: int, heads: int, mlp_ratio: float, dropout: float, backend: str):
        super().__init__()
        hidden = int(width * mlp_ratio)
        self.norm1 = LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attn = Attention(width, heads, backend)
        self.norm2 = LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.mlp = nn.Sequential(
            nn.Linear(width, hidden),
            nn.GELU(approximate="tanh"),
            nn.Dropout(dropout),
            nn.Linear(hidden, width),
        )
        self.drop = nn.Dropout(dropout)
        self.ada = nn.Sequential(nn.SiLU(), nn.Linear(width, 6 * width))
        nn.init.zeros_(self.ada[1].weight)
        nn.init.zeros_(self.ada[1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        sh1, sc1, g1, sh2, sc2, g2 = self.ada(c).chunk(6, dim=-1)
        x = x + g1[:, None, :] * self.drop(self.attn(_modulate(self.norm1(x), sh1, sc1)))
        return x + g2[:, None, :] * self.drop(self.mlp(_modulate(self.norm2(x), sh2, sc2)))


class TemporalTransformer(SwitchableAttention, nn.Module):
    """u_θ(z, r, t, cond): z (B, H, D), r and t (B,), cond (B, cond_dim) or None → u (B, H, D)."""

    def __init__(self, cfg: TransformerConfig):
        super().__init__()
        if cfg.horizon % cfg.patch:
            raise ValueError(f"horizon {cfg.horizon} is not divisible by patch {cfg.patch}")
        if cfg.attention not in ATTENTION_BACKENDS:
            raise ValueError(f"attention must be one of {ATTENTION_BACKENDS}, got {cfg.attention!r}")
        self.cfg = cfg
        w, tokens = cfg.width, cfg.horizon // cfg.patch
        self.embed_in = nn.Linear(cfg.patch * cfg.dim_in, w)
        if cfg.pos_emb == "learned":
            self.pos = nn.Parameter(torch.randn(1, tokens, w) * 0.02)
        elif cfg.pos_emb == "sinusoidal":
            self.register_buffer("pos", sinusoidal_positions(tokens, w)[None], persistent=False)
        else:
            raise ValueError(f"pos_emb must be 'learned' or 'sinusoidal', got {cfg.pos_emb!r}")
        self.time_embed = TimeEmbedding(w, cfg.time_freq_dim, max_freq=cfg.time_max_freq)
        self.cond_embed = (
            nn.Sequential(nn.Linear(cfg.cond_dim, w), nn.SiLU(), nn.Linear(w, w))
            if cfg.cond_dim > 0
            else None
        )
        self.blocks = nn.ModuleList(
            Block(w, cfg.heads, cfg.mlp_ratio, cfg.dropout, cfg.attention) for _ in range(cfg.depth)
        )
        self.norm_out = LayerNorm(w, elementwise_affine=False, eps=1e-6)
        self.ada_out = nn.Sequential(nn.SiLU(), nn.Linear(w, 2 * w))
        self.out = nn.Linear(w, cfg.patch * cfg.dim_in)
        for layer in (self.ada_out[1], self.out):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    # ---- attention path selection -------------------------------------------------------------
    @property
    def attention_backend(self) -> str:
        return self.blocks[0].attn.backend if len(self.blocks) else self.cfg.attention

    @attention_backend.setter
    def attention_backend(self, name: str) -> None:
        if name not in ATTENTION_BACKENDS:
            raise ValueError(f"attention backend must be one of {ATTENTION_BACKENDS}, got {name!r}")
        for block in self.blocks:
            block.attn.backend = name

    # ---- forward --------------------------------------------------------------------------------
    def forward(self, z: torch.Tensor, r: torch.Tensor, t: torch.Tensor, cond: torch.Tensor | None = None):
        cfg = self.cfg
        b, h, d = z.shape
        if (h, d) != (cfg.horizon, cfg.dim_in):
            raise ValueError(f"expected z of shape (B, {cfg.horizon}, {cfg.dim_in}), got {tuple(z.shape)}")
        c = self.time_embed(r, t)
        if self.cond_embed is not None:
            if cond is None or cond.shape != (b, cfg.cond_dim):
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(f"this model needs cond of shape (B, {cfg.cond_dim}), got {got}")
            c = c + self.cond_embed(cond.to(c.dtype))
        elif cond is not None:
            raise ValueError("this model was built with cond_dim=0 and takes no cond")

        x = self.embed_in(z.reshape(b, h // cfg.patch, cfg.patch * d)) + self.pos.to(z.dtype)
        for block in self.blocks:
            x = block(x, c)
        shift, scale = self.ada_out(c).chunk(2, dim=-1)
        x = self.out(_modulate(self.norm_out(x), shift, scale))
        return x.reshape(b, h, d)

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.cfg).items())


def build_transformer(cfg: TransformerConfig) -> TemporalTransformer:
    return TemporalTransformer(cfg)
