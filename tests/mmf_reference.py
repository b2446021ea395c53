"""Small shared pieces for tests: an independent MeanFlow loss, and exact Gaussian flows."""

from __future__ import annotations

import torch
from torch import nn


def reference_mmf_loss(model, x, noise, r, t, lam=0.0, p=1.0, c=1e-3, tangent="conditional"):
    """MMF written out directly: Δ = u + (t - r)·(λ·du/dt + (1 - λ)·sg(du/dt)) - v, weight sg(w).

    One forward-mode pass over the whole batch gives u and du/dt; λ = 0 is MeanFlow."""
    shape = (-1,) + (1,) * (x.dim() - 1)
    z = (1 - t).reshape(shape) * x + t.reshape(shape) * noise
    v = noise - x
    direction = v if tangent == "conditional" else model(z, t, t).detach()
    u, dudt = torch.func.jvp(lambda z_, r_, t_: model(z_, r_, t_), (z, r, t),
                             (direction, torch.zeros_like(r), torch.ones_like(t)))
    mixed = lam * dudt + (1 - lam) * dudt.detach()
    err = (u + (t - r).reshape(shape) * mixed - v).pow(2).flatten(1).sum(1)  # MeanFlow: per-sample sum
    w = (err.detach() + c).pow(-p) if p else torch.ones_like(err)
    return (w * err).mean()


def reference_meanflow_loss(model, x, noise, r, t, p=1.0, c=1e-3, tangent="conditional"):
    """MeanFlow: target v - (t - r)·sg(du/dt), i.e. MMF at λ = 0."""
    return reference_mmf_loss(model, x, noise, r, t, 0.0, p, c, tangent)


def meanflow_as_published(model, x, noise, r, t, p=1.0, c=1e-3):
    """MeanFlow's loss written sample by sample from the paper and its code, sharing nothing with
    the loss above: u_tgt = v - (t - r)·sg(JVP(u; (v, 0, 1))), S = Σ(u - sg(u_tgt))²,
    loss = mean of S / sg((S + c)^p)."""
    total = 0.0
    for i in range(x.shape[0]):
        xi, ei, ri, ti = x[i:i + 1], noise[i:i + 1], r[i:i + 1], t[i:i + 1]
        zi = ((1 - ti) * xi + ti * ei if xi.dim() == 2
              else (1 - ti).view(1, *[1] * (xi.dim() - 1)) * xi + ti.view(1, *[1] * (xi.dim() - 1)) * ei)
        vi = ei - xi
        ui, dudt = torch.func.jvp(model, (zi, ri, ti), (vi, torch.zeros_like(ri), torch.ones_like(ti)))
        u_tgt = (vi - (ti - ri).view(-1, *[1] * (xi.dim() - 1)) * dudt).detach()
        s = ((ui - u_tgt) ** 2).sum()
        total = total + s / (s.detach() + c) ** p
    return total / x.shape[0]


def reference_flow_matching_loss(model, x, noise, t, p=1.0, c=1e-3):
    shape = (-1,) + (1,) * (x.dim() - 1)
    z = (1 - t).reshape(shape) * x + t.reshape(shape) * noise
    err = (model(z, t, t) - (noise - x)).pow(2).flatten(1).sum(1)
    w = (err.detach() + c).pow(-p) if p else torch.ones_like(err)
    return (w * err).mean()


class GaussianAverageVelocity(nn.Module):
    """The exact average velocity for data N(μ, diag(s²)) and noise N(0, I) on z_t = (1-t)x + tε.

    Each coordinate is an independent 1-D Gaussian flow with mean m_t = (1 - t)μ and standard
    deviation σ_t = sqrt((1 - t)² s² + t²); its flow map is affine, z_r = m_r + (σ_r/σ_t)(z_t - m_t),
    so u(z, r, t) = (z - z_r)/(t - r), and u(z, t, t) = v(z, t) = -μ + (σ_t'/σ_t)(z - m_t).
    μ and log s are parameters, so the family contains the truth and can be trained.
    """

    def __init__(self, mu, log_s):
        super().__init__()
        self.mu = nn.Parameter(torch.as_tensor(mu, dtype=torch.float64).clone())
        self.log_s = nn.Parameter(torch.as_tensor(log_s, dtype=torch.float64).clone())

    def sigma(self, t):
        s2 = torch.exp(2 * self.log_s)
        return torch.sqrt((1 - t)[:, None] ** 2 * s2 + t[:, None] ** 2)

    def velocity(self, z, t):
        s2 = torch.exp(2 * self.log_s)
        sig = self.sigma(t)
        dsig = (-(1 - t)[:, None] * s2 + t[:, None]) / sig
        return -self.mu + dsig / sig * (z - (1 - t)[:, None] * self.mu)

    def forward(self, z, r, t):
        span = (t - r)[:, None]
        z_r = (1 - r)[:, None] * self.mu + self.sigma(r) / self.sigma(t) * (z - (1 - t)[:, None] * self.mu)
        safe = torch.where(span > 1e-6, span, torch.ones_like(span))
        avg = (z - z_r) / safe
        return torch.where(span > 1e-6, avg, self.velocity(z, t))
