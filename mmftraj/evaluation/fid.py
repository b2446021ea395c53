"""FID of a checkpoint's samples (or of a saved `.npz`) against the task's training set.

cifar: Inception-v3 pool features (local weights only), reference statistics of the 50k training
images cached per weights file. digits: the cached digits classifier's features, whole data set.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from ..errors import UserError
from .frechet import feature_stats, frechet_distance

FID_TASKS = ("cifar", "digits")


@torch.no_grad()
def _features(extract, images: torch.Tensor, batch: int, device) -> np.ndarray:
    out = [extract(images[i: i + batch].to(device)).double().cpu() for i in range(0, len(images), batch)]
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
    with np.load(path, allow_pickle=False) as data:
        if "samples" in data:
            return torch.from_numpy(data["samples"]).float()
        if "images" in data:
            return torch.from_numpy(data["images"]).permute(0, 3, 1, 2).float() / 127.5 - 1
    raise UserError(f"{path} holds neither 'samples' (N, C, H, W) nor 'images' (N, H, W, C)")


def compute_fid(task: str, checkpoint=None, samples_file=None, data_dir=None, weights=None, n: int = 50000,
                steps: int = 1, seed: int = 0, batch: int = 250, device: str | None = None) -> dict:
    if task not in FID_TASKS:
        from ..errors import choice_error

        raise choice_error("FID task", task, FID_TASKS)
    if (checkpoint is None) == (samples_file is None):
        raise UserError("give exactly one of --checkpoint (to sample) or --samples (an .npz)")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    from ..tasks.image_common import load_image_model

    # Check the feature extractor and reference data before spending time on sampling.
    if task == "cifar":
        from ..data.cifar import load_cifar10, resolve_dir, to_float
        from .inception import load_inception, weights_path

        if not data_dir:
            raise UserError("FID for cifar needs --data-dir (the CIFAR-10 python batch directory)")
        wpath = weights_path(weights)
        root = resolve_dir(data_dir)
        extract = load_inception(wpath, device)
        from .digits_features import cache_dir

        cache = cache_dir() / f"fid_ref_cifar10_train_{_file_digest(wpath)}.npz"
        if cache.is_file():
            with np.load(cache) as ref:
                mu_ref, sigma_ref = ref["mu"], ref["sigma"]
        else:
            images, _ = load_cifar10(root, "train")
            mu_ref, sigma_ref = feature_stats(_features(extract, to_float(images), batch, device))
            from ..io import atomic_path

            with atomic_path(cache, suffix=".npz") as tmp, open(tmp, "wb") as fh:
                np.savez(fh, mu=mu_ref, sigma=sigma_ref)
        from ..tasks.cifar import Config
    else:
        from ..data.digits import load_digits_images
        from .digits_features import load_classifier

        clf, _ = load_classifier()
        extract = clf.features
        device = torch.device("cpu")
        from ..tasks.digits import Config

    if checkpoint is not None:
        from ..core import ModularMeanFlow
        from ..tasks.image_common import generate

        model, cfg = load_image_model(checkpoint, task, Config)
        mode = ModularMeanFlow(cfg.objective).sampling_mode
        samples = generate(model.to(device), n, steps, mode, seed, batch=batch, device=device)
        source = {"checkpoint": str(checkpoint), "steps": steps, "seed": seed, "objective": cfg.objective.variant}
    else:
        samples = load_samples_npz(Path(samples_file))
        source = {"samples": str(samples_file)}
    if task == "digits":
        data, _ = load_digits_images(samples.shape[-1])
        mu_ref, sigma_ref = feature_stats(_features(extract, data, batch, device))
    expected = (3, 32, 32) if task == "cifar" else None
    if expected and tuple(samples.shape[1:]) != expected:
        raise UserError(f"{task} samples must have shape (N, {', '.join(map(str, expected))}), got {tuple(samples.shape)}")
    if len(samples) < 2:
        raise UserError("FID needs at least 2 samples")
    mu, sigma = feature_stats(_features(extract, samples.clamp(-1, 1), batch, device))
    return {"task": task, "fid": frechet_distance(mu, sigma, mu_ref, sigma_ref), "n": int(len(samples)), **source}
