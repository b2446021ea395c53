"""cifar: unconditional CIFAR-10 32×32 with the DDPM++ U-Net (MeanFlow's CIFAR-10 setting).

Meant for GPUs: `mmftraj train --task cifar --data-dir ... --device cuda` (bf16 autocast via
train.precision, channels_last, optional torch.compile, DDP under torchrun by the shared loop).
Data (`--data-dir`, `data.dir`): CIFAR-10's python-version batch directory, or class folders of
PNG/JPEG images (any square size; set model.image_size and model.in_channels to match), such as
a PNG copy of CIFAR-10 (`DIR/train/<class>/*.png`). FID needs Inception weights (`mmftraj fid`),
so training itself reports samples only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from rich.console import Console

from ..core import ObjectiveConfig
from ..data.cifar import AUG_DIM, edm_augment, hflip, to_float
from ..data.image_folder import load_images
from ..errors import UserError
from ..evaluation.images import save_grid
from ..models.unet import UNetConfig, unet_config
from ..training import TrainConfig
from . import Task
from .image_common import (
    ImageEvalConfig,
    RuntimeConfig,
    build_model,
    checkpoint_samples,
    generate,
    make_batch_fn,
    train_images,
)

PRESETS = ()


@dataclass
class CifarData:
    # CIFAR-10's python-version batch directory (or its parent), or class folders of PNG/JPEG images
    # (DIR/train/<class>/*, optional DIR/test/<class>/*; decoded once into a cache); required
    dir: str = ""
    check_cifar10: bool = True  # a folder with CIFAR-10's class names must hold all 50,000 / 10,000 images
    hflip: bool = True
    edm_aug: float = 0.0  # probability of each EDM-style transform (0 disables; MeanFlow uses it)


@dataclass
class Config:
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=128, lr=6e-4, ema_decay=0.9999))
    model: UNetConfig = field(default_factory=lambda: unet_config("ddpmpp"))
    data: CifarData = field(default_factory=CifarData)
    eval: ImageEvalConfig = field(default_factory=lambda: ImageEvalConfig(n_samples=64, steps=[1, 2]))
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


def default_config(preset: str | None = None) -> Config:
    return Config()


def default_preset(cfg: Config) -> None:
    return None


def check_model_fits(model: UNetConfig, shape: tuple[int, ...]) -> None:
    """The U-Net's image size and channels must be the data's (C, H, W); square images only."""
    c, h, w = shape
    if h != w:
        raise UserError(f"the images are {w}×{h}; the U-Net takes square images (crop or resize them first)")
    if (model.image_size, model.in_channels) != (h, c):
        raise UserError(f"the images are {h}×{w} with {c} channel(s) but the model takes {model.image_size}×"
                        f"{model.image_size} with {model.in_channels}: --set model.image_size={h} "
                        f"--set model.in_channels={c}")


def make_draw(images: torch.Tensor, data: CifarData, aug_dim: int):
    """uint8 dataset → the batch dict (x in [-1, 1], optional augmentation labels as cond)."""

    if data.edm_aug > 0 and aug_dim != AUG_DIM:
        raise UserError(f"data.edm_aug > 0 needs model.aug_dim = {AUG_DIM} (got {aug_dim})")

    def draw(idx: torch.Tensor, generator: torch.Generator) -> dict:
        x = to_float(images[idx])
        if data.hflip:
            x = hflip(x, generator)
        if data.edm_aug > 0:
            x, labels = edm_augment(x, data.edm_aug, generator)
            return {"x": x, "cond": {"aug": labels}}
        return {"x": x}

    return draw


def train(cfg: Config, run_dir: Path, resume: bool = False, progress: bool = True) -> dict:
    if not cfg.data.dir:
        raise UserError("the cifar task needs data: --data-dir PATH (CIFAR-10's python batches or class folders "
                        "of PNG/JPEG images; or --set data.dir=PATH)")
    images, _, source = load_images(cfg.data.dir, "train", progress, cfg.data.check_cifar10)
    check_model_fits(cfg.model, images.shape[1:])
    if progress:
        Console().print(f"data: {source}")
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, cfg.runtime, cfg.train.device)
    draw = make_draw(images, cfg.data, cfg.model.aug_dim)
    batch_fn = make_batch_fn(model, cfg.train.batch_size, draw, len(images))
    trainer, objective, fit = train_images("cifar", cfg, model, batch_fn, run_dir, resume, progress)
    out = {"objective": cfg.objective.variant, **fit}
    if trainer.dist.is_main:
        ema, device = trainer.ema, trainer.device
        for k in cfg.eval.steps:
            grid = generate(ema, cfg.eval.n_samples, k, objective.sampling_mode, cfg.eval.seed, device=device)
            save_grid(grid, Path(run_dir) / f"samples-{k}step.png", scale=2)
    return out


def evaluate(checkpoint, steps=None, seed: int = 0, out: Path | None = None, **_) -> dict:
    raise UserError("cifar is scored with `mmftraj fid --task cifar --checkpoint RUN --data-dir DIR --weights W`")


sample_files = partial(checkpoint_samples, "cifar", Config, 2)  # PNG grid + .npz, 2x scaled


TASK = Task("cifar", Config, default_config, train, PRESETS, default_preset, evaluate, sample_files)
