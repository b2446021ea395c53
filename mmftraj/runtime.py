"""Where work runs: the torch device, CPU threads, float32 precision and, under torchrun, this
process's rank in the process group, decided in one place.

Every command and the training loop ask here, so a thread count or device is checked and set
the same way whether it comes from `--threads`, `train.threads`, `--device` or `train.device`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.distributed as dist

from .errors import UserError


def max_threads() -> int:
    """The most CPU threads a run may ask for: far more than the cores only slows it down, and
    torch's thread pool aborts the process (exit 134) when it cannot create them."""
    return 4 * (os.cpu_count() or 1)


def threads_rule() -> str:
    return f"0 (auto) to {max_threads()} (4 x this machine's {os.cpu_count() or 1} cores)"


def check_threads(threads: int, source: str) -> None:
    if not 0 <= threads <= max_threads():
        raise UserError(f"{source} must be {threads_rule()}, got {threads}")


def auto_threads() -> int:
    """The cores the last minute's load average leaves free (at least 1, at most every core)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        busy = os.getloadavg()[0]
    except (OSError, AttributeError):
        return cores
    return max(1, min(cores, cores - round(busy)))


def use_threads(threads: int) -> int:
    """Set torch's intra-op threads to `threads` (0: `auto_threads()`); returns the count set."""
    chosen = threads or auto_threads()
    torch.set_num_threads(chosen)
    return chosen


@contextmanager
def threads_for(threads: int) -> Iterator[None]:
    """Run a block with `threads` intra-op threads, then restore the caller's count (a fixed count
    makes a cached helper model, e.g. a feature classifier, the same on every machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(name: str, source: str = "--device") -> torch.device:
    """The torch device `name`, or a UserError that says where the value came from (`source`)."""
    try:
        device = torch.device(name)
    except RuntimeError:
        raise UserError(f"{source} {name!r} is not a device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"{source} is {name!r} but no CUDA GPU is available here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise UserError(f"{source} is {name!r} but this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    elif device.type != "cpu":
        raise UserError(f"{source} {name!r}: mmftraj runs on cpu or cuda")
    return device


def set_float32_precision(device: torch.device, tf32: bool) -> None:
    """TF32 for float32 convolutions and matmuls on CUDA, or exact float32 (nothing on the CPU).
    With TF32 off, torch's hint to turn it on is silenced: it is a choice, not a missed speed-up."""
    if device.type != "cuda":
        return
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
    if not tf32:
        warnings.filterwarnings("ignore", message="TensorFloat32 tensor cores")


class DistributedContext:
    """Rank/world from torchrun's environment; initialises the process group once. What the ranks
    exchange while training (gradients, loss statistics) is the training loop's own (training.py)."""

    def __init__(self, device: torch.device):
        self.world = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        if self.world > 1 and not dist.is_initialized():
            dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def broadcast_parameters(self, model: torch.nn.Module) -> None:
        """Rank 0's weights on every rank, so all replicas start alike."""
        if self.world > 1:
            for tensor in list(model.parameters()) + list(model.buffers()):
                dist.broadcast(tensor.data, src=0)


def place(threads: int, device: str, tf32: bool,
          source: str = "--device") -> tuple[int, torch.device, DistributedContext]:
    """Set up where a training process works, in one call: its intra-op threads (`use_threads`), its
    device (checked; `source` names the option in errors), float32 precision there, and its place
    in the process group. Returns (threads set, device, DistributedContext)."""
    chosen = use_threads(threads)
    resolved = resolve_device(device, source=source)
    set_float32_precision(resolved, tf32)
    return chosen, resolved, DistributedContext(resolved)


def compile_model(model: torch.nn.Module, scope: str) -> torch.nn.Module:
    """torch.compile with static shapes; per block (in place) where the model lists its blocks.

    dynamic=False: the objective calls the model at a few fixed batch sizes (the whole batch, the
    r < t rows) and grad/precision modes; one static graph each compiles and runs faster than the
    dynamic-shape graph torch.compile would switch to at the second size. Per-block compilation
    compiles each distinct block once per mode instead of the whole network per mode.
    """
    units = list(model.compile_units()) if scope == "blocks" and hasattr(model, "compile_units") else []
    if not units:
        return torch.compile(model, dynamic=False)
    # every distinct block shape × (grad, no-grad, bf16, fp32) mode is one more cache entry
    torch._dynamo.config.cache_size_limit = max(torch._dynamo.config.cache_size_limit, 128)
    for unit in units:
        unit.compile(dynamic=False)
    return model
