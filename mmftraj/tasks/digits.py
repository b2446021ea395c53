"""digits: scikit-learn's bundled 8×8 handwritten digits; the image pipeline end to end on a CPU.

Train a small U-Net with any objective variant, then sample with 1..k steps and score each set by
the Fréchet distance in the feature space of a small digits classifier (cached after first use).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import torch
from rich.console import Console

from ..config import apply_overrides
from ..core import ModularMeanFlow, ObjectiveConfig
from ..data.digits import load_digits_images
from ..errors import UserError
from ..evaluation.digits_features import digits_features, load_classifier
from ..evaluation.frechet import frechet_from_features
from ..evaluation.images import save_grid
from ..models.unet import UNetConfig, unet_config
from ..progress import progress_bar
from ..training import TrainConfig
from . import Task
from .image_common import (
    ImageEvalConfig,
    RuntimeConfig,
    build_model,
    check_image_eval,
    checkpoint_samples,
    generate,
    load_image_model,
    make_batch_fn,
    train_images,
)

PRESETS = ()


@dataclass
class DigitsData:
    size: int = 8  # 8 (native), 16 or 32 (bilinear upsampling)


@dataclass
class Config:
    # c on the per-image sum: 1e-3 per pixel of 8 x 8, the weighting benchmarks/images.md measured
    objective: ObjectiveConfig = field(default_factory=lambda: ObjectiveConfig(lambda_warmup=1000, adaptive_c=0.064))
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(steps=1200, batch_size=128, lr=2e-3, warmup_steps=100,
                                            ema_decay=0.998, log_every=50, ckpt_every=500, threads=1)
    )
    model: UNetConfig = field(default_factory=lambda: unet_config("small", image_size=8, in_channels=1,
                                                                  num_blocks=1, dropout=0.0))
    data: DigitsData = field(default_factory=DigitsData)
    eval: ImageEvalConfig = field(default_factory=lambda: ImageEvalConfig(n_samples=1797, steps=[1, 2, 4, 16]))
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)


def default_config(preset: str | None = None) -> Config:
    return Config()


def default_preset(cfg: Config) -> None:
    return None


def _check(cfg: Config) -> None:
    if cfg.model.image_size != cfg.data.size or cfg.model.in_channels != 1:
        raise UserError(f"digits needs model.image_size = data.size ({cfg.data.size}) and model.in_channels = 1")


def train(cfg: Config, run_dir: Path, resume: bool = False, progress: bool = True) -> dict:
    _check(cfg)
    images, _ = load_digits_images(cfg.data.size)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, cfg.runtime, cfg.train.device)
    batch_fn = make_batch_fn(model, cfg.train.batch_size, lambda idx, g: {"x": images[idx]}, len(images))
    trainer, objective, fit = train_images("digits", cfg, model, batch_fn, run_dir, resume, progress)
    if cfg.eval.n_samples <= 0 or not trainer.dist.is_main:  # evaluation switched off (or not rank 0)
        return {"objective": cfg.objective.variant, **fit}
    if progress:
        steps = "/".join(map(str, cfg.eval.steps))
        Console().print(f"evaluating: Fréchet distance of {cfg.eval.n_samples} samples at {steps} steps")
    metrics = evaluate_model(trainer.ema.cpu(), cfg, objective.sampling_mode, out=Path(run_dir), progress=progress)
    return {"objective": cfg.objective.variant, **fit, **metrics}


def evaluate_model(model, cfg: Config, mode: str, out: Path | None = None, progress: bool = False) -> dict:
    """Fréchet distance (classifier features) of k-step samples to the whole digits set."""

    data, _ = load_digits_images(cfg.data.size)
    clf, clf_meta = load_classifier()
    ref = digits_features(clf, data)
    half = torch.randperm(len(data), generator=torch.Generator().manual_seed(cfg.eval.seed))
    floor = frechet_from_features(ref[half[: len(half) // 2]], ref[half[len(half) // 2:]])
    fd = {}
    with progress_bar("Fréchet distance", len(cfg.eval.steps), enabled=progress) as advance:
        for k in cfg.eval.steps:
            images = generate(model, cfg.eval.n_samples, k, mode, cfg.eval.seed, cfg.eval.batch)
            fd[f"{k}-step"] = frechet_from_features(digits_features(clf, images), ref)
            if out is not None:
                save_grid(images[:100], Path(out) / f"samples-{k}step.png", scale=4)
            advance(1)
    return {"sampling": mode, "fd": fd, "fd_data_halves": floor, "classifier_val_accuracy": clf_meta["val_accuracy"]}


def evaluate(checkpoint, steps: list[int] | None = None, seed: int = 0, out: Path | None = None,
             overrides=(), progress: bool = True, **_) -> dict:
    model, cfg = load_image_model(checkpoint, "digits", Config)
    cfg = apply_overrides(cfg, list(overrides))
    if steps:
        cfg.eval.steps = list(steps)
    cfg.eval.seed = cfg.eval.seed + seed
    return evaluate_model(model, cfg, ModularMeanFlow(cfg.objective).sampling_mode, out=out, progress=progress)


sample_files = partial(checkpoint_samples, "digits", Config, 4)  # PNG grid + .npz, 4x scaled


def check_config(cfg: Config, preset: str | None = None) -> None:
    check_image_eval(cfg.eval, 0, " (0: no evaluation after training)")


TASK = Task("digits", Config, default_config, train, PRESETS, default_preset, evaluate, sample_files,
            check=check_config)
