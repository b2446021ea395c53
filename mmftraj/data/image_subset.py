"""A balanced random subset of an image data set, written as class folders of PNG files.

Why: a machine that cannot see the full data set (a GPU lent for minutes, whose working tree may
carry ~60 MB; a laptop that wants a five-minute run) still needs real images in the layout every
image task reads. PNG is lossless, so the subset's pixels are exactly the source's, and CIFAR-10's
32×32 images take ~2.3 kB each (a uint8 array would take 3 kB). The source is anything
`load_images` reads: CIFAR-10's python batches or class folders.

Layout written: OUT/train/<class>/<index>.png, where index is the image's position in its source
split; OUT/test/<class>/<index>.png when a test split is asked for (same classes and image size as
train, checked); OUT/subset.json (source, seed, counts). Which images: per class, a seeded random
choice without replacement, written in the source's order.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rich.progress import track

from ..errors import UserError
from .image_folder import check_test_split, has_split, load_images, require_data_folder


@dataclass(frozen=True)
class Subset:
    out: Path
    counts: dict  # split -> images written
    bytes: int


def choose(labels: np.ndarray, classes: tuple[str, ...], per_class: int, seed: int, split: str) -> np.ndarray:
    """Indices of `per_class` images of every class, sorted; every class must have that many."""
    counts = np.bincount(labels, minlength=len(classes))
    short = [f"{c} {n:,}" for c, n in zip(classes, counts, strict=True) if n < per_class]
    if short:
        option = "--per-class" if split == "train" else "--test-per-class"
        raise UserError(f"the {split} split has fewer than {per_class:,} images in class(es) {', '.join(short)}; "
                        f"use {option} {int(counts.min()):,} or less")
    rng = np.random.default_rng(seed)
    picks = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(len(classes))]
    return np.sort(np.concatenate(picks))


def _check_target(source: Path, out: Path, test_per_class: int) -> Path:
    """Refuse, before any decoding, what would fail or harm later; returns the partial folder."""
    require_data_folder(source)
    if out.exists():
        raise UserError(f"{out} already exists; choose a new --out (a subset is never written over a folder)")
    if out.resolve().is_relative_to(source.resolve()):
        raise UserError(f"--out {out} is inside the source {source}: it would become one of its class folders; "
                        f"write the subset elsewhere")
    blocking = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocking is not None:
        raise UserError(f"cannot write {out}: {blocking} is a file, not a folder")
    if test_per_class and not has_split(source, "test"):
        raise UserError(f"{source} has no test split (DIR/test/<class>/*); use --test-per-class 0")
    tmp = out.with_name(f".{out.name}.partial")
    if tmp.exists():
        raise UserError(f"{tmp} exists, left by an interrupted subset; remove it and run again")
    return tmp


def write_subset(source: str | Path, out: str | Path, per_class: int, test_per_class: int = 0,
                 seed: int = 0, progress: bool = False) -> Subset:
    """Write the subset; `out` must not exist yet (nothing is overwritten or deleted). Its parent
    folders are made as needed; a failure part-way removes what this call wrote."""
    from PIL import Image  # an image extra; load_images already said how to install it

    source, out = Path(source).expanduser(), Path(out).expanduser()
    if per_class < 1 or test_per_class < 0:
        raise UserError(f"--per-class must be ≥ 1 and --test-per-class ≥ 0, got {per_class} and {test_per_class}")
    tmp = _check_target(source, out, test_per_class)
    wanted = {"train": per_class, **({"test": test_per_class} if test_per_class else {})}
    sets = {split: load_images(source, split, progress, check_cifar10=False) for split in wanted}
    if "test" in sets:
        check_test_split(sets["train"], sets["test"])
    chosen = {split: choose(s.labels.numpy(), s.classes, wanted[split], seed + i, split)
              for i, (split, s) in enumerate(sets.items())}
    written = 0
    try:
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
                    "per_class": wanted, "images": counts, "classes": list(sets["train"].classes),
                    "png_bytes": written,
                    "file_names": "the image's position in its source split (classes in order, then files)"}
        (tmp / "subset.json").write_text(json.dumps(manifest, indent=1) + "\n")
        tmp.rename(out)
    except OSError as err:
        raise UserError(f"cannot write the subset to {out}: {err}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # only this call's own partial folder; empty after the rename
    return Subset(out, counts, written)
