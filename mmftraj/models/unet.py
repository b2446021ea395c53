"""DDPM++-style U-Net u_θ(z, r, t) for images (the network of MeanFlow's CIFAR-10 result).

Layout (EDM's "DDPM++" CIFAR network, written from its description): a 3×3 input conv, per
resolution level a 2×2-average downsampling block then `num_blocks` residual blocks, a mirrored
decoder with skip concatenations, nearest-neighbour upsampling, GroupNorm everywhere (no
BatchNorm: forward-mode AD and per-sample independence), self-attention at `attn_resolutions`,
and the time embedding of (t, t − r) added inside every block. Residual sums are scaled by √½.
The default config has ~55.7M parameters, as the published network.

Attention has a math path (matmul + softmax; works under torch.func.jvp) and a fast path
(F.scaled_dot_product_attention, fused kernels, ordinary forwards only). The fast path falls back
to math when its input carries a forward-mode tangent, and `model.jvp_safe()` forces math.

Dropout and finite-difference JVPs: ordinary dropout draws a new mask per forward, so the two
forwards of a finite-difference du/dt would differ by the mask noise divided by 2ε — garbage. Our
dropout masks are instead a deterministic function of (a per-step random bank, the sample's r):
within one loss evaluation, u(z, r, t) and u(z ± εv, r, t ± ε) use the same mask (r is not moved
by the tangent), so finite differences differentiate one fixed sub-network, like the exact JVP.
Call `model.reseed_dropout(generator)` once per training step (the image tasks do it in their
batch function) to draw fresh masks.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Literal

import torch
import torch.autograd.forward_ad as fwAD
import torch.nn.functional as F
from torch import nn

from ..errors import choice_error
from . import dual
from .embeddings import TimeEmbedding
from .layers import SwitchableAttention

UNET_ATTENTION = ("math", "fast")


@dataclass
class UNetConfig:
    image_size: int = 32
    in_channels: int = 3
    model_channels: int = 128
    channel_mult: list[int] = field(default_factory=lambda: [2, 2, 2])
    num_blocks: int = 4
    attn_resolutions: list[int] = field(default_factory=lambda: [16])
    channels_per_head: int = 64
    dropout: float = 0.2
    aug_dim: int = 0  # length of the augmentation-label vector fed as conditioning (0: none)
    time_freq_dim: int = 128
    time_max_freq: float = 16.0  # low frequencies keep finite-difference JVPs accurate
    attention: Literal["math", "fast"] = "fast"
    groups: int = 32


# ddpmpp: the published CIFAR-10 network; small: 8×8/16×16 digits on a CPU; tiny: tests, CPU smoke.
UNET_PRESETS = {
    "ddpmpp": dict(model_channels=128, channel_mult=[2, 2, 2], num_blocks=4, attn_resolutions=[16]),
    "small": dict(model_channels=32, channel_mult=[1, 2], num_blocks=2, attn_resolutions=[4], groups=8,
                  channels_per_head=32),
    "tiny": dict(model_channels=16, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4], groups=4,
                 channels_per_head=16),
}


def unet_config(preset: str, **overrides) -> UNetConfig:
    if preset not in UNET_PRESETS:
        raise choice_error("U-Net preset", preset, UNET_PRESETS)
    return UNetConfig(**{**UNET_PRESETS[preset], **overrides})


def _has_forward_tangent(x: torch.Tensor) -> bool:
    return fwAD.unpack_dual(x).tangent is not None


def _dropout_keys(r: torch.Tensor) -> torch.Tensor:
    """A well-mixed non-negative int64 per sample from r (24 bits of r, two multiply-xorshift rounds)."""
    k = (r.detach().float().clamp(0, 1) * 16777215.0).long()
    mask32 = 0xFFFFFFFF
    for _ in range(2):
        k = k ^ (k >> 16)
        k = (k * 0x45D9F3B) & mask32
    return k ^ (k >> 16)


class KeyedDropout(nn.Module):
    """Dropout whose mask for sample b is a shifted window of a per-step random bank, the shift a
    function of the sample's key. Same key and bank → same mask, whatever the other rows are."""

    def __init__(self, p: float, channels: int, resolution: int):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout must lie in [0, 1), got {p}")
        self.p = p
        self.bank_channels = 2 * channels
        self.register_buffer("bank", torch.rand(self.bank_channels, resolution, resolution), persistent=False)

    def reseed(self, generator: torch.Generator) -> None:
        self.bank.uniform_(generator=generator)

    def forward(self, x: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
        scale = self.scale(x, keys)
        return x if scale is None else x * scale

    def scale(self, x: torch.Tensor, keys: torch.Tensor) -> torch.Tensor | None:
        """The mask times 1 / (1 - p) for activations shaped like x; None when dropout is off."""
        if not self.training or self.p == 0.0:
            return None
        _, c, h, w = x.shape
        k = self.bank_channels
        dev = x.device
        ic = (torch.arange(c, device=dev)[None, :] + (keys % k)[:, None]) % k
        ih = (torch.arange(h, device=dev)[None, :] + ((keys // k) % h)[:, None]) % h
        iw = (torch.arange(w, device=dev)[None, :] + ((keys // (k * h)) % w)[:, None]) % w
        if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
            # gather in NHWC order so the mask (and the product) keep the channels_last layout
            u = self.bank[ic[:, None, None, :], ih[:, :, None, None], iw[:, None, :, None]].permute(0, 3, 1, 2)
        else:
            u = self.bank[ic[:, :, None, None], ih[:, None, :, None], iw[:, None, None, :]]
        return (u >= self.p).to(x.dtype) * (1.0 / (1.0 - self.p))


def _conv(cin: int, cout: int, kernel: int, scale: float = 1.0) -> nn.Conv2d:
    conv = nn.Conv2d(cin, cout, kernel, padding=kernel // 2)
    with torch.no_grad():
        conv.weight.mul_(scale)
        conv.bias.zero_()
    return conv


class Attention(nn.Module):
    """Spatial self-attention over the H·W positions, math or fused path, same weights."""

    def __init__(self, channels: int, heads: int, groups: int, backend: str):
        super().__init__()
        self.heads, self.backend = heads, backend
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        self.qkv = _conv(channels, 3 * channels, 1)
        self.proj = _conv(channels, channels, 1, scale=1e-5)

    def forward(self, x: torch.Tensor, dx: torch.Tensor | None = None) -> dual.Pair:
        """(output, tangent); a tangent dx takes the math path, whose derivative dual.py writes out."""
        b, c, h, w = x.shape
        d = c // self.heads

        def heads(a):
            return a.reshape(b, 3, self.heads, d, h * w).transpose(-1, -2).unbind(1)

        def merge(a):
            return a.transpose(-1, -2).reshape(b, c, h, w)

        if dx is not None:
            qkv, dqkv = dual.affine(self.qkv, *dual.group_norm(self.norm, x, dx))
            out, dout = dual.attention(*heads(qkv), *heads(dqkv), 1.0 / math.sqrt(d))
            return dual.affine(self.proj, merge(out), merge(dout))
        q, k, v = heads(self.qkv(self.norm(x)))
        # Under torch.compile there is no forward-mode tangent to detect (and the probe would break
        # the graph), so the fast path is taken as configured.
        if self.backend == "fast" and (torch.compiler.is_compiling() or not _has_forward_tangent(q)):
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            scores = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(d))
            out = scores.softmax(dim=-1) @ v
        return self.proj(merge(out)), None


class ResBlock(nn.Module):
    """GroupNorm → SiLU → (resample) conv → + time embedding → GroupNorm → SiLU → dropout → conv."""

    def __init__(self, cin: int, cout: int, emb: int, resolution: int, cfg: UNetConfig,
                 resample: str | None = None, attention: bool = False):
        super().__init__()
        self.resample = resample
        self.norm0 = nn.GroupNorm(min(cfg.groups, cin), cin, eps=1e-6)
        self.conv0 = _conv(cin, cout, 3)
        self.affine = nn.Linear(emb, cout)
        self.norm1 = nn.GroupNorm(min(cfg.groups, cout), cout, eps=1e-6)
        out_res = resolution // 2 if resample == "down" else resolution * 2 if resample == "up" else resolution
        self.dropout = KeyedDropout(cfg.dropout, cout, out_res)
        self.conv1 = _conv(cout, cout, 3, scale=1e-5)
        self.skip = _conv(cin, cout, 1) if (cin != cout or resample) else None
        heads = max(1, cout // cfg.channels_per_head)
        self.attn = Attention(cout, heads, min(cfg.groups, cout), cfg.attention) if attention else None

    def _resample(self, x: torch.Tensor) -> torch.Tensor:
        if self.resample == "down":
            return F.avg_pool2d(x, 2)
        if self.resample == "up":
            return F.interpolate(x, scale_factor=2.0, mode="nearest")
        return x

    def forward(self, x: torch.Tensor, emb: torch.Tensor, keys: torch.Tensor,
                dx: torch.Tensor | None = None, demb: torch.Tensor | None = None) -> dual.Pair:
        """(output, tangent): the tangent is None unless (dx, demb) is given (models/dual.py)."""
        orig, dorig = x, dx
        h, dh = dual.silu(*dual.group_norm(self.norm0, x, dx))
        h, dh = dual.affine(self.conv0, *dual.linear_map(self._resample, h, dh))
        e, de = dual.affine(self.affine, emb, demb)
        h = h + e[:, :, None, None].to(h.dtype)
        dh = dual.add(dh, None if de is None else de[:, :, None, None].to(h.dtype))
        h, dh = dual.silu(*dual.group_norm(self.norm1, h, dh))
        mask = self.dropout.scale(h, keys)  # one mask for the value and its tangent
        h, dh = dual.affine(self.conv1, *dual.linear_map(lambda a: a if mask is None else a * mask, h, dh))
        skip, dskip = dual.linear_map(self._resample, orig, dorig)
        if self.skip is not None:
            skip, dskip = dual.affine(self.skip, skip, dskip)
        x, dx = (h + skip) * math.sqrt(0.5), dual.scale(dual.add(dh, dskip), math.sqrt(0.5))
        if self.attn is not None:
            a, da = self.attn(x, dx)
            x, dx = (x + a) * math.sqrt(0.5), dual.scale(dual.add(dx, da), math.sqrt(0.5))
        return x, dx


class UNet(SwitchableAttention, nn.Module):
    """u_θ(z, r, t, aug=None): z (B, C, H, W), r and t (B,), aug (B, aug_dim) or None → (B, C, H, W)."""

    has_tangent_forward = True  # forward(..., tangent=(dz, dr, dt)) -> (u, du): the `dual` JVP backend

    def __init__(self, cfg: UNetConfig):
        super().__init__()
        if cfg.attention not in UNET_ATTENTION:
            raise ValueError(f"attention must be one of {UNET_ATTENTION}, got {cfg.attention!r}")
        levels = len(cfg.channel_mult)
        if cfg.image_size % (2 ** (levels - 1)):
            raise ValueError(f"image_size {cfg.image_size} is not divisible by 2^{levels - 1}")
        self.cfg = cfg
        self.channels_last = False
        mc = cfg.model_channels
        emb = 4 * mc
        self.time_embed = TimeEmbedding(emb, cfg.time_freq_dim, max_freq=cfg.time_max_freq)
        self.aug_embed = nn.Linear(cfg.aug_dim, emb, bias=False) if cfg.aug_dim > 0 else None

        self.conv_in = _conv(cfg.in_channels, mc, 3)
        self.enc = nn.ModuleList()
        skips = [mc]
        cout = mc
        for level, mult in enumerate(cfg.channel_mult):
            res = cfg.image_size >> level
            if level > 0:
                self.enc.append(ResBlock(cout, cout, emb, res * 2, cfg, resample="down"))
                skips.append(cout)
            for _ in range(cfg.num_blocks):
                cin, cout = cout, mc * mult
                self.enc.append(ResBlock(cin, cout, emb, res, cfg, attention=res in cfg.attn_resolutions))
                skips.append(cout)

        self.dec = nn.ModuleList()
        self.dec_cat: list[bool] = []
        for level in reversed(range(levels)):
            res = cfg.image_size >> level
            if level == levels - 1:
                self.dec.append(ResBlock(cout, cout, emb, res, cfg, attention=True))
                self.dec.append(ResBlock(cout, cout, emb, res, cfg))
                self.dec_cat += [False, False]
            else:
                self.dec.append(ResBlock(cout, cout, emb, res // 2, cfg, resample="up"))
                self.dec_cat.append(False)
            for idx in range(cfg.num_blocks + 1):
                cin, cout = cout + skips.pop(), mc * cfg.channel_mult[level]
                attn = idx == cfg.num_blocks and res in cfg.attn_resolutions
                self.dec.append(ResBlock(cin, cout, emb, res, cfg, attention=attn))
                self.dec_cat.append(True)
        self.norm_out = nn.GroupNorm(min(cfg.groups, cout), cout, eps=1e-6)
        self.conv_out = _conv(cout, cfg.in_channels, 3, scale=0.2)

    # ---- attention path, dropout masks, memory format -------------------------------------------
    @property
    def attention_backend(self) -> str:
        found = [m.backend for m in self.modules() if isinstance(m, Attention)]
        return found[0] if found else self.cfg.attention

    @attention_backend.setter
    def attention_backend(self, name: str) -> None:
        if name not in UNET_ATTENTION:
            raise ValueError(f"attention backend must be one of {UNET_ATTENTION}, got {name!r}")
        for m in self.modules():
            if isinstance(m, Attention):
                m.backend = name

    @torch.no_grad()
    def reseed_dropout(self, generator: torch.Generator) -> None:
        """Draw fresh dropout banks (once per training step) from a CPU generator's stream."""
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        banks = [m for m in self.modules() if isinstance(m, KeyedDropout) and m.p > 0]
        if not banks:
            return
        gen = torch.Generator(banks[0].bank.device).manual_seed(seed)
        for m in banks:
            m.reseed(gen)

    def use_channels_last(self) -> UNet:
        """Convolutions in NHWC (faster tensor-core kernels on GPU); inputs are converted too."""
        self.channels_last = True
        return self.to(memory_format=torch.channels_last)

    def compile_units(self) -> list[nn.Module]:
        """The residual blocks, for per-block torch.compile: the same shapes share compiled code."""
        return [*self.enc, *self.dec]

    # ---- forward --------------------------------------------------------------------------------
    def forward(self, z: torch.Tensor, r: torch.Tensor, t: torch.Tensor, aug: torch.Tensor | None = None,
                tangent: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None):
        """u(z, r, t); with tangent = (dz, dr, dt), the pair (u, du) of u and its exact derivative
        along that direction, computed with ordinary ops (models/dual.py; the `dual` JVP backend)."""
        cfg = self.cfg
        if z.dim() != 4 or z.shape[1:] != (cfg.in_channels, cfg.image_size, cfg.image_size):
            raise ValueError(
                f"expected z of shape (B, {cfg.in_channels}, {cfg.image_size}, {cfg.image_size}), got {tuple(z.shape)}"
            )
        if aug is not None and self.aug_embed is None:
            raise ValueError("this model was built with aug_dim=0 and takes no aug labels")
        dz = demb = None
        if tangent is None:
            emb = self.time_embed(r, t)
        else:
            dz, dr, dt = tangent
            emb, demb = self.time_embed.dual(r, t, dr, dt)
        if aug is not None:  # no tangent: the augmentation labels do not move along the path
            emb = emb + self.aug_embed(aug.to(emb.dtype))
        emb, demb = dual.silu(emb, demb)
        keys = _dropout_keys(r)
        if self.channels_last:
            z = z.contiguous(memory_format=torch.channels_last)
            dz = None if dz is None else dz.contiguous(memory_format=torch.channels_last)
        x, dx = dual.affine(self.conv_in, z, dz)
        skips = [(x, dx)]
        for block in self.enc:
            x, dx = block(x, emb, keys, dx, demb)
            skips.append((x, dx))
        for block, cat in zip(self.dec, self.dec_cat, strict=True):
            if cat:
                s, ds = skips.pop()
                x, dx = torch.cat([x, s], dim=1), None if dx is None else torch.cat([dx, ds], dim=1)
            x, dx = block(x, emb, keys, dx, demb)
        # Output in the input's dtype: under bf16 autocast u comes back in float32 like z, so the
        # objective's float32 du/dt and residual mix with it without casts.
        u, du = dual.affine(self.conv_out, *dual.silu(*dual.group_norm(self.norm_out, x, dx)))
        return u.to(z.dtype) if tangent is None else (u.to(z.dtype), du.to(z.dtype))

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.cfg).items())


def build_unet(cfg: UNetConfig) -> UNet:
    return UNet(cfg)
