"""Class folders of PNG/JPEG images as an image data set, decoded once into a uint8 cache.

Why a cache: decoding 50,000 PNGs with Pillow takes minutes on a laptop CPU; a training run needs
the pixels in a few seconds. The first use of a folder writes `images.npy` (N, C, H, W) uint8,
`labels.npy` (N,) int64 and `manifest.json` (source, counts, classes, size, fingerprint) under
`<cache>/image-folders/`; later runs memory-map the array. The fingerprint hashes every file's
relative path, size and modification time, so adding, removing or rewriting an image rebuilds the
cache, and nothing else does.

Layout: `DIR/train/<class>/*.png|jpg|jpeg` with an optional `DIR/test/<class>/*`, or the class
folders directly in `DIR` (then it is the training split). Every image must have one size and one
mode (RGB, or L for grayscale); nothing is resized or converted silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from rich.progress import track

from ..errors import UserError
from ..io import atomic_write_text, cache_dir
from .cifar import EXPECTED, load_cifar10, resolve_dir

EXTENSIONS = (".png", ".jpg", ".jpeg")
MODES = {"RGB": 3, "L": 1}
SPLITS = ("train", "test")
CACHE_FORMAT = 1
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CIFAR10_COUNTS = {"train": 5000, "test": 1000}  # images per class


@dataclass(frozen=True)
class FolderImages:
    """A decoded split: images (N, C, H, W) uint8 (memory-mapped), labels (N,) int64, and the manifest."""

    images: torch.Tensor
    labels: torch.Tensor
    manifest: dict


def is_image_folder(root: str | Path) -> bool:
    """Whether `root` looks like class folders of images (with or without a train/ level)."""
    try:
        split_dir(root, "train")
    except UserError:
        return False
    return True


def split_dir(root: str | Path, split: str) -> Path:
    """The folder holding the split's class folders: DIR/<split>/, or DIR itself for train."""
    if split not in SPLITS:
        raise UserError(f"image folder split must be one of {', '.join(SPLITS)}, got {split!r}")
    root = Path(root).expanduser()
    if not root.is_dir():
        raise UserError(f"image folder {root} {'is a file, not a folder' if root.exists() else 'does not exist'}")
    if (root / split).is_dir():
        return root / split
    if split == "train" and not (root / "test").is_dir() and _class_dirs(root):
        return root
    raise UserError(f"image folder {root} has no {split}/ folder of class folders"
                    + (" (expected DIR/train/<class>/*.png|jpg, or DIR/<class>/*)" if split == "train" else ""))


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def list_images(folder: Path) -> tuple[list[str], list[list[Path]]]:
    """(class names, files per class), sorted; an empty class or no images at all is an error."""
    classes = _class_dirs(folder)
    if not classes:
        raise UserError(f"{folder} has no class folders (expected {folder}/<class>/*.png|jpg)")
    files = [sorted(p for p in c.iterdir() if p.is_file() and p.suffix.lower() in EXTENSIONS) for c in classes]
    if not any(files):
        raise UserError(f"{folder}: no PNG or JPEG images in its {len(classes)} class folders")
    empty = [c.name for c, f in zip(classes, files, strict=True) if not f]
    if empty:
        raise UserError(f"{folder}: class folder(s) with no PNG or JPEG images: {', '.join(empty)}")
    return [c.name for c in classes], files


def fingerprint(folder: Path, files: list[list[Path]]) -> str:
    """Hash of every image's relative path, size and modification time."""
    h = hashlib.sha1()
    for group in files:
        for p in group:
            st = p.stat()
            h.update(f"{p.relative_to(folder).as_posix()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def _open(path: Path):
    try:
        from PIL import Image
    except ImportError:
        raise UserError("image folders need Pillow: pip install 'mmftraj[image]'") from None
    try:
        image = Image.open(path)
        image.load()  # decodes now: a truncated file fails here, not halfway through training
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise UserError(f"{path}: unreadable or truncated image ({err})") from None
    return image


def decode(folder: Path, files: list[list[Path]], out: Path, progress: bool) -> tuple[tuple[int, int], str]:
    """Decode every file into out/images.npy and out/labels.npy; returns ((H, W), mode)."""
    flat = [(label, p) for label, group in enumerate(files) for p in group]
    first = _open(flat[0][1])
    size, mode = first.size, first.mode
    if mode not in MODES:
        raise UserError(f"{flat[0][1]}: image mode {mode!r}; image folders hold RGB (or L, grayscale) images "
                        f"— convert them first")
    width, height = size
    images = np.lib.format.open_memmap(out / "images.npy", mode="w+", dtype=np.uint8,
                                       shape=(len(flat), MODES[mode], height, width))
    labels = np.empty(len(flat), dtype=np.int64)
    for i, (label, path) in enumerate(track(flat, description=f"decoding {folder}", disable=not progress)):
        image = first if i == 0 else _open(path)
        if image.size != size:
            raise UserError(f"{path}: {image.size[0]}×{image.size[1]} pixels, but {flat[0][1]} has "
                            f"{width}×{height}; every image of a folder must have one size (resize them first)")
        if image.mode != mode:
            raise UserError(f"{path}: image mode {image.mode!r}, but {flat[0][1]} is {mode!r}; "
                            f"every image must be RGB (or every image L)")
        pixels = np.asarray(image, dtype=np.uint8)
        images[i] = pixels.transpose(2, 0, 1) if pixels.ndim == 3 else pixels[None]
        labels[i] = label
        image.close()
    images.flush()
    del images
    np.save(out / "labels.npy", labels)
    return (height, width), mode


def cache_folder(source: Path, split: str) -> Path:
    """One cache per source folder (by its absolute path) and split."""
    key = hashlib.sha1(str(source.resolve()).encode()).hexdigest()[:12]
    return cache_dir() / "image-folders" / f"{split}-{key}"


def load_image_folder(root: str | Path, split: str = "train", progress: bool = False,
                      check_cifar10: bool = True) -> FolderImages:
    """The split's images, from the cache when it matches the folder, else decoded and cached."""
    folder = split_dir(root, split)
    classes, files = list_images(folder)
    stamp = fingerprint(folder, files)
    cache = cache_folder(folder, split)
    manifest = _read_manifest(cache)
    if manifest is None or manifest.get("fingerprint") != stamp or manifest.get("format") != CACHE_FORMAT:
        manifest = _build(folder, split, classes, files, stamp, cache, progress)
    if check_cifar10:
        check_cifar10_counts(manifest)
    try:
        images, labels = _read_cache(cache, manifest)
    except (OSError, ValueError):  # damaged from outside (builds are atomic): rebuild it once
        manifest = _build(folder, split, classes, files, stamp, cache, progress)
        images, labels = _read_cache(cache, manifest)
    return FolderImages(images, labels, manifest)


def _read_cache(cache: Path, manifest: dict) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.from_numpy(np.load(cache / "images.npy", mmap_mode="c"))  # copy-on-write: pages load lazily
    labels = torch.from_numpy(np.load(cache / "labels.npy"))
    if images.shape[0] != manifest["count"] or labels.shape[0] != manifest["count"]:
        raise ValueError("the cache does not match its manifest")
    return images, labels


def _read_manifest(cache: Path) -> dict | None:
    try:
        return json.loads((cache / "manifest.json").read_text())
    except (OSError, ValueError):
        return None


def _build(folder: Path, split: str, classes, files, stamp: str, cache: Path, progress: bool) -> dict:
    """Decode into a temporary folder beside the cache, then swap it in: never a half-written cache."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{cache.name}.", dir=cache.parent))
    try:
        (height, width), mode = decode(folder, files, tmp, progress)
        manifest = {"format": CACHE_FORMAT, "source": str(folder.resolve()), "split": split, "fingerprint": stamp,
                    "count": sum(len(f) for f in files), "classes": classes,
                    "class_counts": {c: len(f) for c, f in zip(classes, files, strict=True)},
                    "height": height, "width": width, "mode": mode, "channels": MODES[mode],
                    "layout": "images.npy (N, C, H, W) uint8; labels.npy (N,) int64, class index in `classes`"}
        atomic_write_text(tmp / "manifest.json", json.dumps(manifest, indent=1) + "\n")
        if cache.exists():
            shutil.rmtree(cache)
        os.replace(tmp, cache)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def check_cifar10_counts(manifest: dict) -> None:
    """A folder whose classes are CIFAR-10's must hold all of it: 5,000 (train) or 1,000 (test)
    32×32 RGB images per class."""
    if tuple(manifest["classes"]) != CIFAR10_CLASSES:
        return
    split, per_class = manifest["split"], CIFAR10_COUNTS[manifest["split"]]
    wrong = {c: n for c, n in manifest["class_counts"].items() if n != per_class}
    shape = (manifest["height"], manifest["width"], manifest["mode"])
    if wrong or shape != (32, 32, "RGB"):
        got = ", ".join(f"{c} {n}" for c, n in wrong.items()) or f"{shape[0]}×{shape[1]} {shape[2]}"
        raise UserError(f"{manifest['source']} has CIFAR-10's classes but not CIFAR-10's {split} split "
                        f"({10 * per_class:,} 32×32 RGB images, {per_class:,} per class); got {got}. "
                        f"A subset on purpose: --set data.check_cifar10=false")


@dataclass(frozen=True)
class ImageSet:
    """Images (N, C, H, W) uint8 with labels (N,) int64, what they are, and a key that changes when
    they do (for caches derived from them: classifiers, reference statistics)."""

    images: torch.Tensor
    labels: torch.Tensor
    description: str
    key: str
    classes: tuple[str, ...]


def require_data_folder(data_dir: str | Path) -> Path:
    """The folder, or a one-line error saying it is missing or a file."""
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise UserError(f"data folder {folder} {what} (give CIFAR-10's python batches or class folders "
                        f"of PNG/JPEG images)")
    return folder


def load_images(data_dir: str | Path, split: str = "train", progress: bool = False,
                check_cifar10: bool = True) -> ImageSet:
    """A split of either CIFAR-10's python batches or class folders of images, whichever
    `data_dir` holds."""
    folder = require_data_folder(data_dir)
    looks_like_batches = (folder / "cifar-10-batches-py").is_dir() or any((folder / f).exists() for f in EXPECTED)
    if looks_like_batches:  # named batch files: the batches' own error says which are missing
        root = resolve_dir(folder)
        images, labels = load_cifar10(root, split)
        return ImageSet(images, labels, f"CIFAR-10 python batches in {root} ({split})", f"cifar10-{split}",
                        CIFAR10_CLASSES)
    if not is_image_folder(folder):
        raise UserError(f"{folder} holds neither CIFAR-10's python batches (data_batch_1..5, test_batch, "
                        "batches.meta) nor class folders of PNG/JPEG images "
                        "(DIR/train/<class>/*.png, or DIR/<class>/*)")
    found = load_image_folder(data_dir, split, progress, check_cifar10)
    m = found.manifest
    kinds = f"{len(m['classes'])} class{'es' if len(m['classes']) != 1 else ''}"
    return ImageSet(found.images, found.labels, f"{m['count']:,} images of {kinds} in "
                    f"{m['source']} ({m['width']}×{m['height']} {m['mode']})", f"folder-{split}-{m['fingerprint']}",
                    tuple(m["classes"]))


def check_test_split(train: ImageSet, test: ImageSet) -> None:
    """A test split is scored against the training split's model: same image shape, same classes."""
    if tuple(test.images.shape[1:]) != tuple(train.images.shape[1:]):
        raise UserError(f"the test split's images are {tuple(test.images.shape[1:])} (C, H, W) but the training "
                        f"split's are {tuple(train.images.shape[1:])}: {test.description}")
    if test.classes != train.classes:
        raise UserError(f"the test split's classes {list(test.classes)} are not the training split's "
                        f"{list(train.classes)}: {test.description}")


def has_split(data_dir: str | Path, split: str) -> bool:
    """Whether `data_dir` holds that split (batches hold both; a folder may lack test/)."""
    try:
        resolve_dir(data_dir)
        return True
    except UserError:
        pass
    try:
        split_dir(data_dir, split)
    except UserError:
        return False
    return True
