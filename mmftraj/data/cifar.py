"""CIFAR-10 from the standard python-version batch directory, without torchvision.

The batches are pickles. Unpickling runs whatever callables the file names, so we use a
restricted unpickler: the only globals it resolves are the three numpy reconstruction helpers an
ndarray needs (`_reconstruct`, `ndarray`, `dtype` — object dtypes refused), and it refuses every
other global with a UserError. The result must then be the expected dict of a (10000, 3072) uint8
array, a label list and byte strings; anything else is refused too.

Augmentation: horizontal flips (not signalled to the model), and optionally EDM-style geometric
augmentation — with probability p per transform: integer translation, isotropic scaling, rotation
(incl. multiples of 90°), anisotropic scaling, fractional translation — applied as one affine warp
with reflection padding; the transform parameters are returned as an 8-d label the model is
conditioned on (zeros = no augmentation, which is what sampling uses), so augmented images teach
the network without leaking into samples.
"""

from __future__ import annotations

import io
import math
import pickle
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import UserError

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILES = ("test_batch",)
META_FILE = "batches.meta"
EXPECTED = TRAIN_FILES + TEST_FILES + (META_FILE,)
AUG_DIM = 8


def _safe_dtype(*args):
    dt = np.dtype(*args)
    if dt.hasobject:
        raise UserError("refusing a pickled numpy array of Python objects")
    return dt


def _allowed_globals() -> dict[tuple[str, str], object]:
    try:
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # numpy < 2
        from numpy.core.multiarray import _reconstruct
    # Files written under numpy 1.x name numpy.core; numpy 2 writes numpy._core. Same function.
    return {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _safe_dtype,
    }


class RestrictedUnpickler(pickle.Unpickler):
    """Resolves only the numpy array helpers above; every other global is refused."""

    def __init__(self, file, source: str = "<pickle>"):
        super().__init__(file, encoding="bytes")
        self.source = source
        self.allowed = _allowed_globals()

    def find_class(self, module: str, name: str):
        found = self.allowed.get((module, name))
        if found is None:
            raise UserError(f"{self.source}: refusing to unpickle global {module}.{name} (not a CIFAR-10 batch)")
        return found

    def persistent_load(self, pid):
        raise UserError(f"{self.source}: refusing a pickle with persistent references")


# A batch is a dict of a label list, a filename list, an array and a name (depth 2, ~20k items).
# Shared references let a small pickle stand for an enormous tree (a 31 KB file of labels nested
# 27 deep through shared lists became 4 GB in np.asarray), so trees beyond these bounds are refused.
MAX_DEPTH = 4
MAX_ITEMS = 2_000_000  # container entries, counted as often as a shared container is reached


def restricted_load(data: bytes, source: str = "<pickle>"):
    try:
        obj = RestrictedUnpickler(io.BytesIO(data), source).load()
    except UserError:
        raise
    except Exception as exc:  # malformed stream: EOF, bad opcode, bad array state, ...
        raise UserError(f"{source}: not a readable CIFAR-10 pickle ({type(exc).__name__}: {exc})") from None
    check_bounded(obj, source)
    return obj


def check_bounded(obj, source: str) -> None:
    """Refuse containers nested deeper than MAX_DEPTH or holding more than MAX_ITEMS entries in
    all, shared ones counted each time they are reached; the walk stops at the first excess, so it
    costs at most MAX_ITEMS steps whatever the pickle."""
    items, stack = 0, [(obj, 0)]
    while stack:
        node, depth = stack.pop()
        if not isinstance(node, (dict, list, tuple, set, frozenset)):
            continue
        if depth >= MAX_DEPTH:
            raise UserError(f"{source}: containers nested more than {MAX_DEPTH} deep; not a CIFAR-10 batch")
        items += len(node)
        if items > MAX_ITEMS:
            raise UserError(f"{source}: more than {MAX_ITEMS:,} entries in all; not a CIFAR-10 batch")
        children = [x for kv in node.items() for x in kv] if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children)


def _key(d: dict, name: str, source: str):
    for k in (name.encode(), name):
        if k in d:
            return d[k]
    raise UserError(f"{source}: missing key {name!r}")


def resolve_dir(data_dir: str | Path) -> Path:
    """The batch directory itself, or its parent holding `cifar-10-batches-py/`."""
    root = Path(data_dir).expanduser()
    for cand in (root, root / "cifar-10-batches-py"):
        if cand.is_dir() and all((cand / f).is_file() for f in EXPECTED):
            return cand
    sub = root / "cifar-10-batches-py"
    where = sub if sub.is_dir() else root  # name what is missing where the user's files actually are
    missing = [f for f in EXPECTED if not (where / f).is_file()]
    raise UserError(
        f"CIFAR-10 batch directory {where} is missing or incomplete (missing: {', '.join(missing)}); expected "
        f"the python-version batches of cifar-10-python.tar.gz, in the folder or in a cifar-10-batches-py/ subfolder"
    )


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One batch file → (images (N, 3, 32, 32) uint8, labels (N,) int64), validated."""
    obj = restricted_load(Path(path).read_bytes(), str(path))
    if not isinstance(obj, dict):
        raise UserError(f"{path}: expected a dict, got {type(obj).__name__}")
    data, labels = _key(obj, "data", str(path)), _key(obj, "labels", str(path))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        got = (getattr(data, "dtype", type(data).__name__), getattr(data, "shape", None))
        raise UserError(f"{path}: 'data' must be a uint8 array of shape (N, 3072), got {got}")
    labels = np.asarray(labels)
    if labels.shape != (data.shape[0],) or labels.dtype.kind not in "iu" or labels.min() < 0 or labels.max() > 9:
        raise UserError(f"{path}: 'labels' must be {data.shape[0]} integers in 0..9")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def load_cifar10(data_dir: str | Path, split: str = "train") -> tuple[torch.Tensor, torch.Tensor]:
    """(images (N, 3, 32, 32) uint8, labels (N,) int64) of the train (50k) or test (10k) split."""
    if split not in ("train", "test"):
        raise UserError(f"CIFAR-10 split must be 'train' or 'test', got {split!r}")
    root = resolve_dir(data_dir)
    meta = restricted_load((root / META_FILE).read_bytes(), str(root / META_FILE))
    if not isinstance(meta, dict):
        raise UserError(f"{root / META_FILE}: expected a dict")
    parts = [read_batch(root / f) for f in (TRAIN_FILES if split == "train" else TEST_FILES)]
    images = torch.from_numpy(np.concatenate([p[0] for p in parts]))
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts]))
    return images, labels


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 → float32 in [-1, 1]."""
    return images.float() / 127.5 - 1.0


def hflip(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    flip = torch.rand(x.shape[0], generator=generator) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def edm_augment(x: torch.Tensor, p: float, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """EDM-style geometric augmentation of a float batch (B, C, H, W); returns (images, labels (B, 8)).

    Each transform is applied to each image independently with probability p; the label records
    its parameters (0 where not applied): [tx_int, ty_int, log2 scale, sin θ, cos θ − 1,
    log2 aniso, tx_frac, ty_frac], translations in units of the image size.
    """
    b = x.shape[0]
    g = generator

    def on() -> torch.Tensor:
        return (torch.rand(b, generator=g) < p).float()

    tx_int = on() * (torch.randint(-4, 5, (b,), generator=g).float() / 32.0)
    ty_int = on() * (torch.randint(-4, 5, (b,), generator=g).float() / 32.0)
    log_s = on() * torch.randn(b, generator=g) * 0.2
    rot90 = on() * torch.randint(0, 4, (b,), generator=g).float() * (math.pi / 2)
    theta = rot90 + on() * (torch.rand(b, generator=g) * 2 - 1) * math.pi
    log_a = on() * torch.randn(b, generator=g) * 0.2
    tx_f = on() * torch.randn(b, generator=g) * 0.125
    ty_f = on() * torch.randn(b, generator=g) * 0.125
    labels = torch.stack([tx_int, ty_int, log_s, torch.sin(theta), torch.cos(theta) - 1, log_a, tx_f, ty_f], 1)

    # Output pixel → input pixel map (inverse transform), in affine_grid's [-1, 1] coordinates.
    sx = torch.exp2(-(log_s + log_a))
    sy = torch.exp2(-(log_s - log_a))
    c, s = torch.cos(theta), torch.sin(theta)
    mat = torch.zeros(b, 2, 3)
    mat[:, 0, 0], mat[:, 0, 1] = c * sx, s * sx
    mat[:, 1, 0], mat[:, 1, 1] = -s * sy, c * sy
    mat[:, 0, 2] = -2 * (tx_int + tx_f)
    mat[:, 1, 2] = -2 * (ty_int + ty_f)
    grid = F.affine_grid(mat, list(x.shape), align_corners=False)
    warped = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
    identity = (labels == 0).all(1)
    return torch.where(identity[:, None, None, None], x, warped), labels
