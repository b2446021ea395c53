"""Feature space for the digits Fréchet distance: a small CNN classifier trained on the digits.

There is no Inception for 8×8 digits, so the project trains its own classifier (deterministically:
fixed seed, one thread, fixed split) and caches it; the 64-d penultimate activations play the role
of Inception's pool features. The cache key includes a version, so a changed recipe retrains.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from ..data.digits import load_digits_images
from ..io import atomic_path, atomic_write_text, cache_dir
from ..runtime import threads_for

VERSION = 1
FEATURE_DIM = 64


class DigitsClassifier(nn.Module):
    """8×8 input → three 3×3 convs (GroupNorm, SiLU) → global average pool (features) → logits."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.GroupNorm(8, 32), nn.SiLU(),
            nn.Conv2d(32, 64, 3, padding=1, stride=2), nn.GroupNorm(8, 64), nn.SiLU(),
            nn.Conv2d(64, FEATURE_DIM, 3, padding=1), nn.GroupNorm(8, FEATURE_DIM), nn.SiLU(),
        )
        self.head = nn.Linear(FEATURE_DIM, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != 8:
            x = F.adaptive_avg_pool2d(x, 8)
        return self.body(x.clamp(-1, 1)).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _shift(x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """Random ±1 pixel translations (edge padding), so features do not hinge on exact placement."""
    n = x.shape[0]
    padded = F.pad(x, (1, 1, 1, 1), mode="replicate")
    dy = torch.randint(0, 3, (n,), generator=g)
    dx = torch.randint(0, 3, (n,), generator=g)
    rows = (torch.arange(8)[None, :] + dy[:, None])[:, None, :, None].expand(n, 1, 8, 10)
    out = padded.gather(2, rows)
    cols = (torch.arange(8)[None, :] + dx[:, None])[:, None, None, :].expand(n, 1, 8, 8)
    return out.gather(3, cols)


def train_classifier(epochs: int = 40, seed: int = 0) -> tuple[DigitsClassifier, dict]:
    """Train on a fixed 80 % split; report accuracy on the held-out 20 %."""

    x, y = load_digits_images(8)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x), generator=g)
    n_val = len(x) // 5
    val, tr = perm[:n_val], perm[n_val:]
    with threads_for(1):
        torch.manual_seed(seed)
        model = DigitsClassifier()
        opt = torch.optim.Adam(model.parameters(), lr=3e-3)
        for epoch in range(epochs):
            model.train()
            order = tr[torch.randperm(len(tr), generator=g)]
            for group in opt.param_groups:
                group["lr"] = 3e-3 * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * epoch / epochs)).item())
            for i in range(0, len(order), 64):
                idx = order[i: i + 64]
                loss = F.cross_entropy(model(_shift(x[idx], g)), y[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
        model.eval()
        with torch.no_grad():
            acc = float((model(x[val]).argmax(1) == y[val]).float().mean())
    return model, {"version": VERSION, "seed": seed, "epochs": epochs, "val_accuracy": acc}


def load_classifier(directory: Path | None = None) -> tuple[DigitsClassifier, dict]:
    """The cached classifier, trained and written (atomically) on first use."""

    root = Path(directory) if directory is not None else cache_dir()
    weights, meta_path = root / f"digits_classifier_v{VERSION}.safetensors", root / f"digits_classifier_v{VERSION}.json"
    model = DigitsClassifier()
    if weights.is_file() and meta_path.is_file():
        model.load_state_dict(load_file(str(weights)))
        return model.eval().requires_grad_(False), json.loads(meta_path.read_text())
    model, meta = train_classifier()
    with atomic_path(weights, suffix=".safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))
    atomic_write_text(meta_path, json.dumps(meta, indent=1))
    return model.eval().requires_grad_(False), meta


FEATURE_BATCH = 512  # training's evaluation and `mmftraj fid --task digits` both use it


@torch.no_grad()
def digits_features(model: DigitsClassifier, images: torch.Tensor, batch: int = FEATURE_BATCH) -> torch.Tensor:
    return torch.cat([model.features(images[i: i + batch].float().cpu()) for i in range(0, len(images), batch)])
