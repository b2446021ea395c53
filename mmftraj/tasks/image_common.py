"""What the image tasks (cifar, digits) share: building the U-Net, the batch function, training,
sampling in batches, and loading a checkpoint back into a model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ..checkpoint import load_task_model, run_name
from ..config import to_dict
from ..core import ModularMeanFlow, sample
from ..errors import UserError, check_seed
from ..evaluation.images import save_grid, save_npz
from ..models import count_parameters
from ..models.unet import UNet, UNetConfig, build_unet
from ..runtime import default_device
from ..training import Trainer


@dataclass
class RuntimeConfig:
    channels_last: bool = True  # NHWC convolutions; applied on CUDA only (slower on CPU)


@dataclass
class ImageEvalConfig:
    n_samples: int = 2000
    steps: list[int] = field(default_factory=lambda: [1, 2])
    batch: int = 500
    seed: int = 1234


def check_image_eval(e: ImageEvalConfig, min_samples: int = 1, why: str = "") -> None:
    """eval.* values an image run could only fail on after training, refused before it starts."""
    if not e.steps or min(e.steps) < 1:
        raise UserError(f"eval.steps must list sampling step counts of at least 1, got {e.steps}")
    if e.n_samples < min_samples:
        raise UserError(f"eval.n_samples must be at least {min_samples}{why}, got {e.n_samples}")
    if e.batch < 1:
        raise UserError(f"eval.batch must be at least 1, got {e.batch}")
    check_seed(e.seed, "eval.seed")


def build_model(model_cfg: UNetConfig, runtime: RuntimeConfig, device: str) -> UNet:
    model = build_unet(model_cfg)
    if runtime.channels_last and torch.device(device).type == "cuda":
        model.use_channels_last()
    return model


def make_batch_fn(model: UNet, batch_size: int, draw: Callable[[torch.Tensor, torch.Generator], dict],
                  n_data: int) -> Callable[[torch.Generator, int], dict]:
    """Uniform indices with replacement from the step's generator; fresh dropout masks per step."""

    def batch_fn(generator: torch.Generator, step: int) -> dict:
        idx = torch.randint(0, n_data, (batch_size,), generator=generator)
        model.reseed_dropout(generator)
        return draw(idx, generator)

    return batch_fn


def train_images(task: str, cfg, model: UNet, batch_fn, run_dir: Path, resume: bool, progress: bool):
    objective = ModularMeanFlow(cfg.objective)
    trainer = Trainer(model, objective, batch_fn, cfg.train, run_dir, meta={"task": task, "config": to_dict(cfg)},
                      progress=progress)
    fit = {"parameters": count_parameters(model), **trainer.fit(resume=resume)}
    return trainer, objective, fit


@torch.no_grad()
def generate(model: UNet, n: int, steps: int, mode: str, seed: int, batch: int = 500,
             device: str | torch.device = "cpu", on_batch: Callable[[int], None] | None = None) -> torch.Tensor:
    """n samples with `steps` evaluations each; noise from one CPU generator, so the set for a given
    seed does not depend on the batch size or the device. `on_batch(k)` hears of each batch of k."""
    cfg = model.cfg
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, cfg.in_channels, cfg.image_size, cfg.image_size, generator=g)
    model.eval()
    out = []
    for i in range(0, n, batch):
        out.append(sample(model, noise[i: i + batch].to(device), steps=steps, mode=mode).float().cpu())
        if on_batch is not None:
            on_batch(len(out[-1]))
    return torch.cat(out)


def load_image_model(checkpoint, task: str, config_cls, which: str = "ema"):
    model, cfg, _ = load_task_model(checkpoint, task, config_cls, lambda c: build_unet(c.model), which)
    return model, cfg


def write_samples(model: UNet, cfg, task: str, steps: int, n: int, out: Path, seed: int, scale: int,
                  run: str, device: str | torch.device | None = None) -> list[Path]:
    """A PNG grid and an .npz named after the run too, so two runs sampled into one folder do not
    overwrite each other."""

    mode = ModularMeanFlow(cfg.objective).sampling_mode
    device = device or default_device()
    images = generate(model.to(device), n, steps, mode, seed, device=device)
    out = Path(out)
    stem = f"{task}-{run}-{cfg.objective.variant}-{steps}step-s{seed}"
    grid = save_grid(images[: min(n, 256)], out / f"{stem}.png", scale=scale)
    arrays = save_npz(images, out / f"{stem}.npz", steps=steps, seed=seed, variant=cfg.objective.variant)
    return [grid, arrays]


def checkpoint_samples(task: str, config_cls, scale: int, checkpoint, steps: int = 1, n: int = 64,
                       out: Path = Path("samples"), seed: int = 0, device: str | torch.device | None = None,
                       overrides=()) -> list[Path]:
    """An image task's `sample`: load the checkpoint, draw n samples with k steps, write grid + .npz."""
    if overrides:
        raise UserError(f"{task} samples take no --set (got {overrides[0]!r})")
    model, cfg = load_image_model(checkpoint, task, config_cls)
    return write_samples(model, cfg, task, steps, n, out, seed, scale=scale, run=run_name(checkpoint), device=device)

