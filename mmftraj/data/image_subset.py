"""A balanced random subset of an image data set, written as class folders of PNG files.

Why: a machine that cannot see the full data set (a GPU lent for minutes, whose working tree may
carry ~60 MB; a laptop that wants a five-minute run) still needs real images in the layout every
image task reads. PNG is lossless, so the subset's pixels are exactly the source's, and CIFAR-10's
32×32 images take ~2.3 kB each (a uint8 array would take 3 kB). The source is anything
`load_images` reads: CIFAR-10's python batches or class folders.

Layout written: OUT/train/<class>/<index>.png, OUT/test/<class>/<index>.png when a test split is
asked for, and OUT/subset.json (source, seed, counts per class and split). Which images: per class,
a seeded random choice without replacement, in the source's order.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.progress import track

from ..errors import UserError
from .image_folder import load_images


@dataclass(frozen=True)
class Subset:
    out: Path
    counts: dict  # split -> images written
    bytes: int


def choose(labels: np.ndarray, n_classes: int, per_class: int, seed: int) -> np.ndarray:
    """Indices of `per_class` images of every class, sorted; every class must have that many."""
    rng = np.random.default_rng(seed)
    picks = []
    for c in range(n_classes):
        members = np.flatnonzero(labels == c)
        if len(members) < per_class:
            raise UserError(f"class {c} has {len(members):,} images, fewer than the {per_class:,} per class asked for")
        picks.append(rng.choice(members, per_class, replace=False))
    return np.sort(np.concatenate(picks))


def write_subset(source: str | Path, out: str | Path, per_class: int, test_per_class: int = 0,
                 seed: int = 0, progress: bool = False) -> Subset:
    """Write the subset; `out` must not exist yet (nothing is overwritten or deleted)."""
    from PIL import Image  # an image extra; load_images already said how to install it

    out = Path(out).expanduser()
    if out.exists():
        raise UserError(f"{out} already exists; choose a new --out (a subset is never written over a folder)")
    if per_class < 1 or test_per_class < 0:
        raise UserError(f"--per-class must be ≥ 1 and --test-per-class ≥ 0, got {per_class} and {test_per_class}")
    wanted = {"train": per_class, **({"test": test_per_class} if test_per_class else {})}
    sets = {split: load_images(source, split, progress, check_cifar10=False) for split in wanted}
    chosen = {split: choose(s.labels.numpy(), len(s.classes), wanted[split], seed + i)
              for i, (split, s) in enumerate(sets.items())}
    tmp = out.with_name(f".{out.name}.partial")
    if tmp.exists():
        raise UserError(f"{tmp} exists (an interrupted subset?); remove it and run again")
    written = 0
    for split, s in sets.items():
        for c in s.classes:
            (tmp / split / c).mkdir(parents=True)
        for i in track(chosen[split], description=f"writing {split}", disable=not progress):
            pixels = s.images[int(i)].numpy()
            image = Image.fromarray(pixels.transpose(1, 2, 0) if pixels.shape[0] == 3 else pixels[0])
            path = tmp / split / s.classes[int(s.labels[int(i)])] / f"{int(i):06d}.png"
            image.save(path, optimize=True)
            written += path.stat().st_size
    counts = {split: int(len(idx)) for split, idx in chosen.items()}
    manifest = {"source": {split: s.description for split, s in sets.items()}, "seed": seed,
                "per_class": {split: wanted[split] for split in wanted}, "images": counts,
                "classes": list(sets["train"].classes), "png_bytes": written}
    (tmp / "subset.json").write_text(json.dumps(manifest, indent=1) + "\n")
    tmp.rename(out)
    return Subset(out, counts, written)
