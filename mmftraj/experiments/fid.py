"""FID of a checkpoint's samples (or of a saved `.npz`) against the task's training set.

cifar: Inception-v3 pool features (local weights only), reference statistics of the 50k training
images cached per weights file. digits: the cached digits classifier's features, whole data set.
Every cheap check (arguments, files, the checkpoint's task, the samples' shape and count) runs
before the expensive passes (reference features, sampling), so a mistake costs seconds, not hours.
"""

from __future__ import annotations

import hashlib
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core import ModularMeanFlow
from ..data.cifar import resolve_dir, to_float
from ..data.digits import load_digits_images
from ..data.image_folder import is_image_folder, load_images
from ..errors import UserError, choice_error
from ..evaluation.digits_features import FEATURE_BATCH, load_classifier
from ..evaluation.frechet import feature_stats, frechet_distance
from ..evaluation.inception import load_inception, weights_path
from ..io import atomic_path, cache_dir
from ..progress import progress_bar
from ..runtime import default_device, resolve_device
from ..tasks import cifar, digits
from ..tasks.image_common import generate, load_image_model

FID_TASKS = ("cifar", "digits")
CIFAR_N, CIFAR_SEED, CIFAR_BATCH = 50000, 0, 250  # the usual FID-50k


@torch.no_grad()
def _features(extract, images: torch.Tensor, batch: int, device, on_batch=None) -> np.ndarray:
    out = []
    for i in range(0, len(images), batch):
        out.append(extract(images[i: i + batch].to(device)).double().cpu())
        if on_batch is not None:
            on_batch(len(out[-1]))
    return torch.cat(out).numpy()


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def load_samples_npz(path: Path) -> torch.Tensor:
    """Float samples in [-1, 1] from an `.npz` written by `mmftraj sample` (or uint8 NHWC `images`)."""
    if not Path(path).is_file():
        raise UserError(f"samples file not found: {path}")
    try:
        with np.load(path, allow_pickle=False) as data:
            if "samples" in data:
                return torch.from_numpy(data["samples"]).float()
            if "images" in data:
                return torch.from_numpy(data["images"]).permute(0, 3, 1, 2).float() / 127.5 - 1
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, TypeError) as exc:
        raise UserError(f"{path} is not a samples .npz (numeric arrays, no pickles): {str(exc).splitlines()[0][:120]}"
                        ) from None
    raise UserError(f"{path} holds neither 'samples' (N, C, H, W) nor 'images' (N, H, W, C)")


def default_n_seed(task: str, cfg, n: int | None, seed: int | None) -> tuple[int, int]:
    """--n/--seed left out: cifar draws the usual 50000 with seed 0; digits repeats the run's own
    evaluation (eval.n_samples, eval.seed), so its 1-step FID equals results.json's fd.1-step."""
    if task == "cifar":
        return (CIFAR_N if n is None else n), (CIFAR_SEED if seed is None else seed)

    saved = cfg.eval.n_samples if cfg.eval.n_samples >= 2 else digits.Config().eval.n_samples  # eval was off
    return (saved if n is None else n), (cfg.eval.seed if seed is None else seed)


@dataclass
class _Source:
    """What gets scored: its shape (N, C, H, W), how to get the samples (slow for a checkpoint), a record."""

    shape: tuple[int, ...]
    draw: Callable[[bool], torch.Tensor]
    info: dict


@dataclass
class _Extractor:
    """A task's feature network, where and in what batches it runs, and its name in progress bars."""

    extract: Callable[[torch.Tensor], torch.Tensor]
    batch: int
    device: torch.device
    label: str

    def stats(self, images: torch.Tensor, what: str, progress: bool) -> tuple[np.ndarray, np.ndarray]:
        with progress_bar(f"{self.label} features: {what} ({len(images)})", len(images), progress) as advance:
            return feature_stats(_features(self.extract, images, self.batch, self.device, advance))


def _check_arguments(task: str, checkpoint, samples_file, data_dir, weights, device) -> torch.device:
    """What the arguments alone decide; returns the device sampling and features run on."""

    if task not in FID_TASKS:
        raise choice_error("FID task", task, FID_TASKS)
    if (checkpoint is None) == (samples_file is None):
        raise UserError("give exactly one of --checkpoint (to sample) or --samples (an .npz)")
    resolved = resolve_device(device or default_device(), source="--device")
    if task == "cifar":
        return resolved
    if weights is not None or data_dir is not None:
        raise UserError("digits uses the project's own classifier features; --weights/--data-dir are for cifar")
    return torch.device("cpu")  # digits sample and score on the CPU, as training's evaluation does


def _cifar_inputs(data_dir, weights) -> tuple[Path, Path]:
    """(weights file, data folder: CIFAR-10's python batches or class folders of images), both checked."""

    if not data_dir:
        raise UserError("FID for cifar needs --data-dir (CIFAR-10's python batches or class folders of its images)")
    wpath = weights_path(weights)
    if not _is_batch_dir(data_dir) and not is_image_folder(data_dir):
        load_images(data_dir)  # raises the one-line error that names both layouts
    return wpath, Path(data_dir)


def _is_batch_dir(data_dir) -> bool:
    try:
        resolve_dir(data_dir)
    except UserError:
        return False
    return True


def _check_count(n: int) -> None:
    if n < 2:
        raise UserError(f"FID needs at least 2 samples, got {n}")


def _check_shape(task: str, shape: tuple[int, ...]) -> None:
    """cifar scores (N, 3, 32, 32); digits one channel, square (the size picks the reference set)."""
    if task == "cifar":
        ok, want = tuple(shape[1:]) == (3, 32, 32), "(N, 3, 32, 32)"
    else:
        ok, want = len(shape) == 4 and shape[1] == 1 and shape[2] == shape[3], "(N, 1, S, S)"
    if not ok:
        raise UserError(f"{task} samples must have shape {want}, got {tuple(shape)}")


def _checkpoint_source(task: str, checkpoint, n, steps: int, seed, batch: int, device) -> _Source:
    """Load the checkpoint (it must be the task's) now; sample only when `draw` is called."""
    model, cfg = load_image_model(checkpoint, task, cifar.Config if task == "cifar" else digits.Config)
    n, seed = default_n_seed(task, cfg, n, seed)
    _check_count(n)
    mode = ModularMeanFlow(cfg.objective).sampling_mode
    batch = cfg.eval.batch if task == "digits" else batch  # digits: the batches training's evaluation used

    def draw(progress: bool) -> torch.Tensor:
        what = f"Sampling {n} ({steps} step{'s' if steps > 1 else ''}) from {checkpoint}"
        with progress_bar(what, n, progress) as advance:
            return generate(model.to(device), n, steps, mode, seed, batch=batch, device=device, on_batch=advance)

    shape = (n, cfg.model.in_channels, cfg.model.image_size, cfg.model.image_size)
    info = {"checkpoint": str(checkpoint), "steps": steps, "seed": seed, "objective": cfg.objective.variant}
    return _Source(shape, draw, info)


def _npz_source(samples_file) -> _Source:
    samples = load_samples_npz(Path(samples_file))
    _check_count(len(samples))
    return _Source(tuple(samples.shape), lambda progress: samples, {"samples": str(samples_file)})


def _cifar_reference(ext: _Extractor, root: Path, wpath: Path, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    """Statistics of the training images, cached per data set and weights file (hours on a CPU)."""

    data = load_images(root, "train", progress)  # a folder's key is its files' fingerprint
    cache = cache_dir() / f"fid_ref_{data.key.replace('-', '_')}_{_file_digest(wpath)}.npz"
    if cache.is_file():
        with np.load(cache) as ref:
            return ref["mu"], ref["sigma"]
    mu, sigma = ext.stats(to_float(data.images), data.description, progress)
    with atomic_path(cache, suffix=".npz") as tmp, open(tmp, "wb") as fh:
        np.savez(fh, mu=mu, sigma=sigma)
    return mu, sigma


def _digits_reference(ext: _Extractor, size: int, progress: bool) -> tuple[np.ndarray, np.ndarray]:
    data, _ = load_digits_images(size)
    return ext.stats(data, "digits", progress)


def compute_fid(task: str, checkpoint=None, samples_file=None, data_dir=None, weights=None, n: int | None = None,
                steps: int = 1, seed: int | None = None, batch: int = CIFAR_BATCH, device: str | None = None,
                progress: bool = False) -> dict:
    """FID of `checkpoint`'s samples or of `samples_file`. n/seed None: the task's default (see
    default_n_seed). `batch` is cifar's; digits uses its evaluation's batches. `progress`: rich bars."""
    device = _check_arguments(task, checkpoint, samples_file, data_dir, weights, device)
    if task == "cifar":
        wpath, root = _cifar_inputs(data_dir, weights)
    source = (_checkpoint_source(task, checkpoint, n, steps, seed, batch, device) if checkpoint is not None
              else _npz_source(samples_file))
    _check_shape(task, source.shape)
    if task == "cifar":
        ext = _Extractor(load_inception(wpath, device), batch, device, "Inception")
        mu_ref, sigma_ref = _cifar_reference(ext, root, wpath, progress)
    else:
        ext = _Extractor(load_classifier()[0].features, FEATURE_BATCH, device, "Classifier")
        mu_ref, sigma_ref = _digits_reference(ext, source.shape[-1], progress)
    samples = source.draw(progress)
    mu, sigma = ext.stats(samples.clamp(-1, 1), "samples", progress)
    return {"task": task, "fid": frechet_distance(mu, sigma, mu_ref, sigma_ref), "n": int(len(samples)), **source.info}
