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

from ..config import apply_overrides
from ..core import ModularMeanFlow, ObjectiveConfig
from ..data.cifar import AUG_DIM, edm_augment, hflip, to_float
from ..data.image_folder import ImageSet, check_test_split, has_split, load_images
from ..errors import UserError
from ..evaluation.frechet import frechet_from_features
from ..evaluation.image_classifier import (
    ClassifierRecipe,
    classifier_cached,
    classifier_features,
    load_classifier,
)
from ..evaluation.images import save_grid
from ..models import count_parameters
from ..models.unet import UNetConfig, unet_config
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

PRESETS = ("small",)  # configs/cifar-small.yaml: a CPU-sized run


@dataclass
class CifarData:
    # CIFAR-10's python-version batch directory (or its parent), or class folders of PNG/JPEG images
    # (DIR/train/<class>/*, optional DIR/test/<class>/*; decoded once into a cache); required
    dir: str = ""
    check_cifar10: bool = True  # a folder with CIFAR-10's class names must hold all 50,000 / 10,000 images
    hflip: bool = True
    edm_aug: float = 0.0  # probability of each EDM-style transform (0 disables; MeanFlow uses it)


@dataclass
class CifarEval(ImageEvalConfig):
    # Fréchet distance after training, in the features of a classifier the project trains on the
    # data (cached; mmftraj.evaluation.image_classifier), against the test split when there is one
    fd: bool = False
    classifier_width: int = 16
    classifier_epochs: int = 10


@dataclass
class Config:
    objective: ObjectiveConfig = field(default_factory=ObjectiveConfig)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(batch_size=128, lr=6e-4, ema_decay=0.9999))
    model: UNetConfig = field(default_factory=lambda: unet_config("ddpmpp"))
    data: CifarData = field(default_factory=CifarData)
    eval: CifarEval = field(default_factory=lambda: CifarEval(n_samples=64, steps=[1, 2]))
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
    factor = 2 ** (len(model.channel_mult) - 1)  # the U-Net halves the image this many times over
    if h % factor:
        raise UserError(f"the images are {h}×{w}, but this U-Net ({len(model.channel_mult)} levels) needs a size "
                        f"divisible by {factor}: resize them (e.g. to {h // factor * factor or factor}) or use "
                        f"fewer levels (model.channel_mult)")
    if (model.image_size, model.in_channels) != (h, c):
        fixes = ([f"--set model.image_size={h}"] if model.image_size != h else []) + (
            [f"--set model.in_channels={c}"] if model.in_channels != c else [])
        raise UserError(f"the images are {h}×{w} with {c} channel(s) but the model takes {model.image_size}×"
                        f"{model.image_size} with {model.in_channels}: {' '.join(fixes)}")


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


LARGE_ON_CPU = 10_000_000  # parameters above which a CPU step takes minutes


def cpu_note(model, cfg: Config) -> None:
    """One line before a large U-Net trains on the CPU: its steps take minutes there (the default
    55.8M U-Net took 560 s for its first 2 steps at batch 128 on 2 busy cores, 13 GB of memory)."""
    n = count_parameters(model)
    if cfg.train.device == "cpu" and n > LARGE_ON_CPU:
        Console().print(f"a {n / 1e6:.1f}M-parameter U-Net on the CPU: each step of batch {cfg.train.batch_size} "
                        f"takes minutes; --preset small is the CPU-sized run", markup=False, highlight=False,
                        soft_wrap=True)


def cap_batch(cfg: Config, n_images: int, progress: bool) -> None:
    """A batch holds at most as many rows as the data has images, as a DataLoader's would: 128 rows
    drawn with replacement from a 36-image folder cost 3.6× the arithmetic for the same expected
    gradient (a smoke run of the GPU recipe on a CPU spent 337 s on two such steps)."""
    if cfg.train.batch_size > n_images:
        if progress:
            Console().print(f"train.batch_size {cfg.train.batch_size} is more than the {n_images} training images: "
                            f"batches of {n_images}", markup=False, highlight=False, soft_wrap=True)
        cfg.train.batch_size = n_images


def train(cfg: Config, run_dir: Path, resume: bool = False, progress: bool = True) -> dict:
    if not cfg.data.dir:
        raise UserError("the cifar task needs data: --data-dir PATH (CIFAR-10's python batches or class folders "
                        "of PNG/JPEG images; or --set data.dir=PATH)")
    data = load_images(cfg.data.dir, "train", progress, cfg.data.check_cifar10)
    images = data.images
    check_model_fits(cfg.model, images.shape[1:])
    if progress:
        Console().print(f"data: {data.description}")
    cap_batch(cfg, len(images), progress)
    torch.manual_seed(cfg.train.seed)
    model = build_model(cfg.model, cfg.runtime, cfg.train.device)
    if progress:
        cpu_note(model, cfg)
    draw = make_draw(images, cfg.data, cfg.model.aug_dim)
    batch_fn = make_batch_fn(model, cfg.train.batch_size, draw, len(images))
    trainer, objective, fit = train_images("cifar", cfg, model, batch_fn, run_dir, resume, progress)
    out = {"objective": cfg.objective.variant, **fit}
    if not trainer.dist.is_main:
        return out
    ema, device = trainer.ema, trainer.device
    if cfg.eval.fd:
        return {**out, **evaluate_model(ema, cfg, objective.sampling_mode, Path(run_dir), progress, device, data)}
    for k in cfg.eval.steps:
        grid = generate(ema, cfg.eval.n_samples, k, objective.sampling_mode, cfg.eval.seed, device=device)
        save_grid(grid, Path(run_dir) / f"samples-{k}step.png", scale=2)
    return out


def evaluate_model(model, cfg: Config, mode: str, out: Path | None = None, progress: bool = False,
                   device: str | torch.device = "cpu", train_set: ImageSet | None = None) -> dict:
    """Fréchet distance of k-step samples in the project's classifier features, for each k in
    eval.steps, against the test split (else the training split), beside the floor of as many
    real training images; sample grids (the first 100) under `out`."""
    if cfg.eval.n_samples < 2:
        raise UserError(f"eval.n_samples must be at least 2 for a Fréchet distance, got {cfg.eval.n_samples}")
    check = cfg.data.check_cifar10
    train_set = train_set or load_images(cfg.data.dir, "train", progress, check)  # training passes its own
    check_model_fits(cfg.model, train_set.images.shape[1:])
    test_set = load_images(cfg.data.dir, "test", progress, check) if has_split(cfg.data.dir, "test") else None
    if test_set is not None:
        check_test_split(train_set, test_set)
    recipe = ClassifierRecipe(width=cfg.eval.classifier_width, epochs=cfg.eval.classifier_epochs)
    if progress and not classifier_cached(train_set, test_set, recipe):
        Console().print(f"training the feature classifier once ({recipe.epochs} epochs on {train_set.description}; "
                        "cached for later runs)")
    clf, meta = load_classifier(train_set, test_set, recipe, progress=progress)
    reference = test_set or train_set
    ref = classifier_features(clf, reference.images)
    n = min(cfg.eval.n_samples, len(train_set.images))
    pick = torch.randperm(len(train_set.images), generator=torch.Generator().manual_seed(cfg.eval.seed))[:n]
    floor = frechet_from_features(classifier_features(clf, train_set.images[pick]), ref)
    fd = {}
    for k in cfg.eval.steps:
        images = generate(model, n, k, mode, cfg.eval.seed, cfg.eval.batch, device=device)
        fd[f"{k}-step"] = frechet_from_features(classifier_features(clf, images.cpu()), ref)
        if out is not None:
            save_grid(images[:100], Path(out) / f"samples-{k}step.png", scale=2)
        if progress:
            Console().print(f"{k}-step: Fréchet distance {fd[f'{k}-step']:.3f} (real data {floor:.3f})")
    return {"sampling": mode, "fd": fd, "fd_data_floor": floor, "fd_samples": n, "fd_reference": reference.description,
            "classifier_accuracy": meta["accuracy"], "classifier": meta}


def evaluate(checkpoint, steps=None, seed: int = 0, out: Path | None = None, overrides=(), progress: bool = True,
             **_) -> dict:
    model, cfg = load_image_model(checkpoint, "cifar", Config)
    cfg = apply_overrides(cfg, list(overrides))
    if not cfg.data.dir:
        raise UserError("this run has no data.dir to score against: --set data.dir=PATH (or `mmftraj fid` for FID)")
    if steps:
        cfg.eval.steps = list(steps)
    cfg.eval.seed = cfg.eval.seed + seed
    return evaluate_model(model, cfg, ModularMeanFlow(cfg.objective).sampling_mode, out, progress)


sample_files = partial(checkpoint_samples, "cifar", Config, 2)  # PNG grid + .npz, 2x scaled


def check_config(cfg: Config, preset: str | None = None) -> None:
    """eval.* values the run would only fail on after training (the classifier's too), refused first."""
    check_image_eval(cfg.eval, 2 if cfg.eval.fd else 1, " for a Fréchet distance (eval.fd)" if cfg.eval.fd else "")
    if cfg.eval.classifier_width < 1 or cfg.eval.classifier_epochs < 1:
        raise UserError(f"eval.classifier_width and eval.classifier_epochs must be at least 1, got "
                        f"{cfg.eval.classifier_width} and {cfg.eval.classifier_epochs}")


TASK = Task("cifar", Config, default_config, train, PRESETS, default_preset, evaluate, sample_files, check=check_config)
