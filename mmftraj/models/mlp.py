"""A small residual MLP u_θ(z, r, t) for low-dimensional data (toy distributions, tests)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UserError
from .embeddings import TimeEmbedding
from .layers import LayerNorm


@dataclass
class MLPConfig:
    dim: int = 2
    hidden: int = 128
    depth: int = 3
    time_dim: int = 64
    freq_dim: int = 32


def check_mlp(cfg: MLPConfig, section: str = "model") -> None:
    """Refuse sizes torch would fail on deep inside a layer (negative) or train nothing with (0)."""
    bad = [f"{section}.{name} must be at least 1, got {getattr(cfg, name)}"
           for name in ("dim", "hidden", "depth", "time_dim", "freq_dim") if getattr(cfg, name) < 1]
    if bad:
        raise UserError("; ".join(bad))


class TimeMLP(nn.Module):
    """Residual SiLU blocks; the time embedding is added to every block's input."""

    def __init__(self, cfg: MLPConfig):
        super().__init__()
        self.cfg = cfg
        self.time = TimeEmbedding(cfg.time_dim, freq_dim=cfg.freq_dim)
        self.inp = nn.Linear(cfg.dim, cfg.hidden)
        self.time_proj = nn.ModuleList(nn.Linear(cfg.time_dim, cfg.hidden) for _ in range(cfg.depth))
        self.blocks = nn.ModuleList(
            nn.Sequential(
                LayerNorm(cfg.hidden),
                nn.Linear(cfg.hidden, cfg.hidden),
                nn.SiLU(),
                nn.Linear(cfg.hidden, cfg.hidden),
            )
            for _ in range(cfg.depth)
        )
        self.out = nn.Sequential(LayerNorm(cfg.hidden), nn.Linear(cfg.hidden, cfg.dim))

    def forward(self, z: torch.Tensor, r: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        emb = self.time(r, t)
        h = self.inp(z)
        for proj, block in zip(self.time_proj, self.blocks, strict=True):
            h = h + block(h + proj(emb))
        return self.out(h)
