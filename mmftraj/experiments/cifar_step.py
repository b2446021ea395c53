"""The CIFAR-10 training step as the image benchmarks build it: a config from step settings, the
images (real or synthetic uint8), and a Trainer ready to take steps.

Why in the package: benchmarks/cifar_throughput.py times this step and benchmarks/step_flops.py
counts its FLOPs; both must build exactly the same step, and scripts do not import each other.
`settings` is any object with the attributes cifar_throughput.py's options give (preset, batch,
precision, compile, compile_scope, tf32, channels_last, jvp, attention, overrides, device).
"""

from __future__ import annotations

import torch

from ..core import ModularMeanFlow
from ..data.image_folder import load_images
from ..run_request import resolve_config
from ..tasks.cifar import make_draw
from ..tasks.image_common import build_model, make_batch_fn
from ..training import Trainer

PRESET_OVERRIDES = {
    "ddpmpp": [],
    "tiny": ["model.model_channels=16", "model.channel_mult=[1, 2]", "model.num_blocks=1",
             "model.attn_resolutions=[16]", "model.groups=4", "model.channels_per_head=16"],
}


def split_variant(spec: str) -> tuple[str, list[str]]:
    """'mmf@a.b=1,c.d=2' -> ('mmf', ['a.b=1', 'c.d=2'])."""
    name, _, rest = spec.partition("@")
    return name, [o for o in rest.split(",") if o]


def make_config(settings, spec: str, extra: list[str] = ()):
    """The cifar task's config for one variant spec under the step settings (then `extra`, the
    settings' own overrides, and the spec's)."""
    variant, own = split_variant(spec)
    overrides = list(PRESET_OVERRIDES[settings.preset]) + [
        f"train.batch_size={settings.batch}", f"train.precision={settings.precision}",
        f"train.compile={str(settings.compile).lower()}", f"train.compile_scope={settings.compile_scope}",
        f"train.tf32={str(settings.tf32).lower()}", f"runtime.channels_last={str(settings.channels_last).lower()}",
        "train.threads=0",
    ]
    if settings.jvp:
        overrides.append(f"objective.jvp={settings.jvp}")
    if settings.attention:
        overrides.append(f"model.attention={settings.attention}")
    overrides += list(extra) + settings.overrides + own
    _, cfg = resolve_config("cifar", overrides=overrides, objective=variant, device=settings.device)
    return cfg


def dataset(data_dir: str | None) -> torch.Tensor:
    """CIFAR-10's batches or class folders (such as a shard from `mmftraj data image-subset`), or
    without a folder 4096 synthetic uint8 images (seed 0): a step's cost does not depend on them."""
    if data_dir:
        found = load_images(data_dir, "train", progress=True, check_cifar10=False)
        print(f"data: {found.description}", flush=True)
        return found.images
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (4096, 3, 32, 32), generator=g, dtype=torch.uint8)


def build(cfg, images, run_dir=None) -> Trainer:
    """A Trainer on `images` with the model seeded at 0, ready for train_step() or fit()."""
    torch.manual_seed(0)
    model = build_model(cfg.model, cfg.runtime, cfg.train.device)
    batch_fn = make_batch_fn(model, cfg.train.batch_size, make_draw(images, cfg.data, cfg.model.aug_dim), len(images))
    return Trainer(model, ModularMeanFlow(cfg.objective), batch_fn, cfg.train, run_dir, meta={"task": "cifar"},
                   progress=False)
