"""Feature space for a Fréchet distance on any labelled image set (CIFAR-10 or a folder): a small
CNN classifier the project trains itself on the training split and caches.

Why not Inception: its weights cannot be downloaded here, and a CPU user wants a number in
minutes. The digits metric showed the recipe works: train a classifier deterministically (fixed
seed, one thread, fixed order), use its penultimate activations as features, report its held-out
accuracy beside every distance so a reader can judge the feature space. Distances in this space
compare runs with each other; they are not FID and not comparable with published FIDs.

The cache key holds the data's key (a folder's fingerprint), the recipe version and its settings,
so a changed data set or recipe retrains.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from rich.progress import track
from safetensors.torch import load_file, save_file
from torch import nn

from ..data.cifar import to_float
from ..data.image_folder import ImageSet
from ..io import atomic_path, atomic_write_text, cache_dir
from ..runtime import threads_for

VERSION = 1


@dataclass(frozen=True)
class ClassifierRecipe:
    width: int = 16  # channels of the first stage; stages have 1, 2, 4, 8 × width; features 8 × width
    epochs: int = 10
    batch: int = 128
    lr: float = 2e-3
    seed: int = 0


class ImageClassifier(nn.Module):
    """(B, C, H, W) in [-1, 1] → four stages of two 3×3 convs (GroupNorm, SiLU; stride 2 between
    stages) → global average pool: features (B, 8·width) → logits (B, classes)."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 16):
        super().__init__()
        layers, c_in = [], in_channels
        for i, mult in enumerate((1, 2, 4, 8)):
            c = width * mult
            layers += [nn.Conv2d(c_in, c, 3, padding=1, stride=1 if i == 0 else 2), nn.GroupNorm(min(8, c // 4), c),
                       nn.SiLU(), nn.Conv2d(c, c, 3, padding=1), nn.GroupNorm(min(8, c // 4), c), nn.SiLU()]
            c_in = c
        self.body = nn.Sequential(*layers)
        self.feature_dim = c_in
        self.head = nn.Linear(c_in, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.clamp(-1, 1)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _augment(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random crops after 4-pixel reflection padding, and horizontal flips."""
    n, _, h, w = x.shape
    padded = F.pad(x, (4, 4, 4, 4), mode="reflect")
    dy = torch.randint(0, 9, (n,), generator=g)
    dx = torch.randint(0, 9, (n,), generator=g)
    rows = (torch.arange(h)[None] + dy[:, None])[:, None, :, None].expand(n, x.shape[1], h, w + 8)
    out = padded.gather(2, rows)
    cols = (torch.arange(w)[None] + dx[:, None])[:, None, None, :].expand(n, x.shape[1], h, w)
    out = out.gather(3, cols)
    flip = torch.rand(n, generator=g) < 0.5
    return torch.where(flip[:, None, None, None], out.flip(-1), out)


@torch.no_grad()
def accuracy(model: ImageClassifier, images: torch.Tensor, labels: torch.Tensor, batch: int = 500) -> float:
    model.eval()
    right = sum(int((model(to_float(images[i: i + batch])).argmax(1) == labels[i: i + batch]).sum())
                for i in range(0, len(images), batch))
    return right / len(images)


def train_classifier(train: ImageSet, test: ImageSet | None, recipe: ClassifierRecipe = ClassifierRecipe(),
                     progress: bool = False) -> tuple[ImageClassifier, dict]:
    """Train on `train` (one thread, fixed seed: the same weights on every run of one machine);
    accuracy on `test`, or on a held-out tenth of `train` when there is no test split."""
    g = torch.Generator().manual_seed(recipe.seed)
    n = len(train.images)
    if test is None:
        perm = torch.randperm(n, generator=g)
        held, fit = perm[: max(1, n // 10)], perm[max(1, n // 10):]
        eval_images, eval_labels, where = train.images[held], train.labels[held], "a held-out tenth of train"
    else:
        fit = torch.arange(n)
        eval_images, eval_labels, where = test.images, test.labels, "the test split"
    t0 = time.perf_counter()
    with threads_for(1):
        torch.manual_seed(recipe.seed)
        model = ImageClassifier(train.images.shape[1], len(train.classes), recipe.width)
        opt = torch.optim.AdamW(model.parameters(), lr=recipe.lr, weight_decay=5e-4)
        steps = recipe.epochs * max(1, -(-len(fit) // recipe.batch))
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, recipe.lr, total_steps=steps, pct_start=0.15)
        for _ in track(range(recipe.epochs), description="training the feature classifier", disable=not progress):
            model.train()
            order = fit[torch.randperm(len(fit), generator=g)]
            for i in range(0, len(order), recipe.batch):
                idx = order[i: i + recipe.batch]
                loss = F.cross_entropy(model(_augment(to_float(train.images[idx]), g)), train.labels[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                sched.step()
        acc = accuracy(model, eval_images, eval_labels)
    meta = {"version": VERSION, "recipe": asdict(recipe), "data": train.key, "classes": list(train.classes),
            "accuracy": acc, "accuracy_on": where, "train_time_s": round(time.perf_counter() - t0, 1)}
    return model.eval().requires_grad_(False), meta


def _cache_paths(train: ImageSet, test: ImageSet | None, recipe: ClassifierRecipe,
                 directory: Path | None = None) -> tuple[Path, Path]:
    tag = json.dumps([VERSION, train.key, test.key if test is not None else None, asdict(recipe)])
    name = f"classifier-{hashlib.sha1(tag.encode()).hexdigest()[:16]}"
    root = (Path(directory) if directory is not None else cache_dir()) / "image-classifiers"
    return root / f"{name}.safetensors", root / f"{name}.json"


def classifier_cached(train: ImageSet, test: ImageSet | None, recipe: ClassifierRecipe = ClassifierRecipe(),
                      directory: Path | None = None) -> bool:
    return all(p.is_file() for p in _cache_paths(train, test, recipe, directory))


def load_classifier(train: ImageSet, test: ImageSet | None, recipe: ClassifierRecipe = ClassifierRecipe(),
                    directory: Path | None = None, progress: bool = False) -> tuple[ImageClassifier, dict]:
    """The cached classifier for this data and recipe, trained and written (atomically) on first use."""
    weights, meta_path = _cache_paths(train, test, recipe, directory)
    if weights.is_file() and meta_path.is_file():
        meta = json.loads(meta_path.read_text())
        model = ImageClassifier(train.images.shape[1], len(meta["classes"]), meta["recipe"]["width"])
        model.load_state_dict(load_file(str(weights)))
        return model.eval().requires_grad_(False), meta
    model, meta = train_classifier(train, test, recipe, progress)
    with atomic_path(weights, suffix=".safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    atomic_write_text(meta_path, json.dumps(meta, indent=1))
    return model, meta


@torch.no_grad()
def classifier_features(model: ImageClassifier, images: torch.Tensor, batch: int = 500) -> torch.Tensor:
    """(N, feature_dim) features of images given as uint8 (N, C, H, W) or floats in [-1, 1]."""
    model.eval()
    out = []
    for i in range(0, len(images), batch):
        x = images[i: i + batch]
        out.append(model.features(to_float(x) if x.dtype == torch.uint8 else x.float().cpu()))
    return torch.cat(out)
