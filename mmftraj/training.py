"""The one training loop every task uses.

AdamW with linear LR warm-up (then constant or cosine), gradient clipping, EMA weights, the λ
curriculum driven by the global step, atomic safetensors checkpoints with exact resume,
`metrics.csv`, a rich progress bar, and multi-process data parallelism under torchrun.

Exact resume without saving RNG streams: every step reseeds its generators from
(seed, rank, step), so step k draws the same batch, noise and times whether or not the run was
interrupted before it.

Divergence: every step compares its raw loss with the running median of recent healthy ones
(LossHealth). A checkpoint counts as good once the loss computed from its weights, the next step's,
is healthy; `checkpoints/last_good.json` records it. A loss far above the median, or not finite,
stops the run with one line; checkpoints newer than the last good one are set aside, so --resume
continues from it.

Data parallelism: the JVP goes through torch.func, which bypasses DistributedDataParallel's
gradient hooks silently, so we do not wrap the model in DDP at all. Each rank computes its loss
on its own data and gradients are averaged by hand with one all-reduce of a flat buffer before
clipping; every rank then takes the same optimizer step.
"""

from __future__ import annotations

import copy
import csv
import io
import math
import statistics
import time
from collections import deque
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NoReturn

import numpy as np
import torch
import torch.distributed as dist
from rich.console import Console

from . import progress as progress_lines
from .checkpoint import (
    checkpoint_step,
    last_good_checkpoint,
    latest_checkpoint,
    load_checkpoint,
    mark_good,
    restore_optimizer,
    save_checkpoint,
    set_aside,
    split_prefix,
)
from .errors import MAX_SEED, UserError
from .interrupts import Aborted, Interrupted, deferred_signals
from .io import atomic_write_text, open_no_follow
from .progress import training_bar
from .runtime import compile_model, max_threads, place, threads_rule

BatchFn = Callable[[torch.Generator, int], dict]


@dataclass
class TrainConfig:
    steps: int = 2000
    batch_size: int = 256
    lr: float = 1e-3
    lr_schedule: Literal["constant", "cosine"] = "constant"
    min_lr_ratio: float = 0.1  # cosine decays to lr · min_lr_ratio
    warmup_steps: int = 100
    weight_decay: float = 0.0
    beta1: float = 0.9
    beta2: float = 0.999
    grad_clip: float = 1.0  # 0 disables clipping
    ema_decay: float = 0.999
    log_every: int = 50
    ckpt_every: int = 500
    keep_checkpoints: int = 2
    seed: int = 0
    device: str = "cpu"
    precision: Literal["fp32", "bf16"] = "fp32"
    compile: bool = False  # on CUDA; on the CPU only with compile_cpu (see below)
    # A first compiled step of a large network on the CPU takes many minutes (55.8M U-Net: > 17
    # min, 7.7 GB) for little gain there, so `compile: true` (the GPU recipes) is skipped on the
    # CPU with a note unless this is set too.
    compile_cpu: bool = False
    # "blocks": compile each repeated block of a model that lists them (`compile_units()`), so
    # blocks of one shape share their compiled code; "model": one graph for the whole network.
    compile_scope: Literal["blocks", "model"] = "blocks"
    # TF32 for float32 convolutions/matmuls on CUDA. Off by default: float32 work under bf16
    # autocast is du/dt's, and a finite difference divides TF32's ~1e-3 rounding by 2ε.
    tf32: bool = False
    # torch intra-op threads on CPU. 0: the cores the last minute's load leaves free (at least 1),
    # chosen once per run: beside one busy job, torch's every-core default halved a U-Maze run
    # (2.0 vs 4.3 it/s with one thread); alone it keeps every core (7.1 it/s). Set N for runs that
    # must match bit for bit across processes (results may differ in the last bits with N).
    threads: int = 0
    # After SIGINT/SIGTERM the run finishes its step, saves and exits; a step still running this
    # many seconds after the signal is abandoned instead (exit 128 + signal, the last checkpoint
    # kept), since a cluster kills a job 30-120 s after SIGTERM. 0: wait for the step however long.
    signal_grace_s: float = 60.0


def check_train_config(cfg: TrainConfig) -> None:
    """Refuse values that would crash deep inside torch or train on nothing (NaN losses)."""
    finite = [n for n in ("lr", "grad_clip", "weight_decay", "ema_decay", "beta1", "beta2", "min_lr_ratio",
                          "signal_grace_s")
              if not math.isfinite(getattr(cfg, n))]
    if finite:
        raise UserError("; ".join(f"train.{n} must be a finite number, got {getattr(cfg, n)}" for n in finite))
    rules = [
        ("steps", cfg.steps >= 1, "at least 1"), ("batch_size", cfg.batch_size >= 1, "at least 1"),
        ("lr", cfg.lr > 0, "positive"), ("warmup_steps", cfg.warmup_steps >= 0, "0 or more"),
        ("log_every", cfg.log_every >= 1, "at least 1"),
        ("ckpt_every", cfg.ckpt_every >= 0, "0 (final checkpoint only) or more"),
        ("keep_checkpoints", cfg.keep_checkpoints >= 1, "at least 1"),
        ("grad_clip", cfg.grad_clip >= 0, "0 (off) or positive"), ("weight_decay", cfg.weight_decay >= 0, "0 or more"),
        ("ema_decay", 0 <= cfg.ema_decay < 1, "in [0, 1)"), ("beta1", 0 <= cfg.beta1 < 1, "in [0, 1)"),
        ("beta2", 0 <= cfg.beta2 < 1, "in [0, 1)"), ("min_lr_ratio", 0 <= cfg.min_lr_ratio <= 1, "in [0, 1]"),
        ("threads", 0 <= cfg.threads <= max_threads(), threads_rule()),
        ("seed", 0 <= cfg.seed <= MAX_SEED, f"0 to {MAX_SEED}"),
        ("signal_grace_s", cfg.signal_grace_s >= 0, "0 (wait for the step) or more seconds"),
    ]
    bad = [f"train.{name} must be {want}, got {getattr(cfg, name)}" for name, ok, want in rules if not ok]
    if bad:
        raise UserError("; ".join(bad))


def step_seed(seed: int, rank: int, step: int) -> int:
    """A well-mixed 63-bit seed for (seed, rank, step)."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def lr_factor(cfg: TrainConfig, step: int) -> float:
    if cfg.warmup_steps > 0 and step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "cosine":
        span = max(1, cfg.steps - cfg.warmup_steps)
        progress = min(1.0, (step - cfg.warmup_steps) / span)
        return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress))
    return 1.0


# What the ranks exchange every step (runtime.DistributedContext says which rank of how many this
# process is): gradients averaged by hand, not by DDP (see the module docstring), and the loss
# statistics each rank judges the run's health on.
def average_over_ranks(values: torch.Tensor, world: int) -> torch.Tensor:
    """`values` averaged over the `world` ranks, so every rank takes the same decision on them."""
    if world > 1:
        values = values.clone()
        dist.all_reduce(values, op=dist.ReduceOp.SUM)
        values /= world
    return values


def average_gradients(params: list[torch.nn.Parameter], world: int) -> None:
    """One all-reduce over a flat buffer of every gradient (missing grads count as zero)."""
    if world <= 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat, op=dist.ReduceOp.SUM)
    flat /= world
    offset = 0
    for p, g in zip(params, grads, strict=True):
        n = g.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


# Loss health, judged on the raw per-entry MSE (stats["mse"]): the adaptive weight divides the
# weighted loss by about its own size, so that one stays near 1 while the model explodes. A healthy
# run's MSE stays within a few times its recent median (the λ curriculum moves it gradually); a
# diverging one (lr 1e6 on toy2d) jumps by 1e24 within one step. The wide gap between the two
# factors keeps ordinary noise from ever stopping a run.
LOSS_WINDOW = 200  # recent healthy losses the running median is taken over
SUSPECT_FACTOR = 10.0  # above this times the median a loss is not healthy: it confirms no checkpoint
DIVERGED_FACTOR = 1000.0  # above this times the median (or not finite) the run has diverged and stops


class LossHealth:
    """The running median of recent healthy losses, and a verdict on each new one."""

    def __init__(self, median: float | None = None):
        seed = [median] * LOSS_WINDOW if median is not None and math.isfinite(median) and median > 0 else []
        self.recent: deque[float] = deque(seed, maxlen=LOSS_WINDOW)  # a resumed run starts at its saved scale

    @property
    def median(self) -> float | None:
        return statistics.median(self.recent) if self.recent else None

    def ratio(self, value: float) -> float:
        """`value` over the running median: inf when not finite, 1 before there is a median."""
        if not math.isfinite(value):
            return math.inf
        median = self.median
        return value / median if median else 1.0

    def judge(self, value: float) -> tuple[str, float]:
        """("healthy" | "suspect" | "diverged", ratio); healthy values join the median's window."""
        ratio = self.ratio(value)
        if ratio > DIVERGED_FACTOR:
            return "diverged", ratio
        if ratio > SUSPECT_FACTOR:
            return "suspect", ratio
        self.recent.append(value)
        return "healthy", ratio


class MetricsLog:
    """Append-only metrics.csv; on resume, rows past the checkpoint's step are dropped. A symbolic
    link there is refused on resume and never written through."""

    def __init__(self, path: Path, resume_step: int | None):
        self.path = path
        self.fields: list[str] | None = None
        if path.is_symlink():
            if resume_step is not None:
                raise UserError(f"{path} is a symbolic link; mmftraj never writes through links, so it will not "
                                "continue this run: replace it with the file itself")
            path.unlink()  # a fresh run: the link goes, its target is untouched
        if resume_step is not None and path.exists():
            try:
                with path.open(encoding="utf-8") as fh:
                    rows = list(csv.DictReader(fh))
                kept = [r for r in rows if int(r["step"]) <= resume_step]
            except (UnicodeDecodeError, csv.Error, KeyError, TypeError, ValueError) as exc:
                raise UserError(f"{path} is not a metrics table mmftraj can continue ({type(exc).__name__}); "
                                "move it away and resume again (a new one is started)") from None
            if rows:
                self.fields = list(rows[0].keys())
                text = io.StringIO(newline="")
                writer = csv.DictWriter(text, fieldnames=self.fields)
                writer.writeheader()
                writer.writerows(kept)
                atomic_write_text(path, text.getvalue())
        elif path.exists():
            path.unlink()

    def last_row(self) -> dict:
        """The newest row on disk (a resumed run that has nothing left to train reports it)."""
        if not self.path.exists():
            return {}
        with self.path.open() as fh:
            rows = list(csv.DictReader(fh))
        return {k: float(v) for k, v in rows[-1].items() if v} if rows else {}

    def write(self, row: dict) -> None:
        new = self.fields is None
        if new:
            self.fields = list(row.keys())
        with open_no_follow(self.path, "a") as fh:
            writer = csv.DictWriter(fh, fieldnames=self.fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)


class Trainer:
    """Train `model` on `objective` with batches from `batch_fn(generator, step)`.

    `batch_fn` returns a dict with "x" (data tensor) and optionally "cond" (dict of model
    kwargs) and "loss_mask". `meta` is stored in every checkpoint (task name, config, ...).
    """

    def __init__(
        self,
        model: torch.nn.Module,
        objective,
        batch_fn: BatchFn,
        cfg: TrainConfig,
        run_dir: Path | None = None,
        meta: dict | None = None,
        progress: bool = True,
    ):
        self.cfg = cfg
        check_train_config(cfg)
        self.threads, self.device, self.dist = place(cfg.threads, cfg.device, cfg.tf32, source="train.device")
        self.model = model.to(self.device)
        self.dist.broadcast_parameters(self.model)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.objective = objective
        self.batch_fn = batch_fn
        self.run_dir = Path(run_dir) if run_dir is not None else None
        if self.run_dir is not None and self.dist.is_main:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        self.meta = meta or {}
        self.progress = progress and self.dist.is_main
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), weight_decay=cfg.weight_decay
        )
        self.compiled = cfg.compile and (self.device.type != "cpu" or cfg.compile_cpu)
        self.forward_model = compile_model(self.model, cfg.compile_scope) if self.compiled else self.model
        self.step = 0
        self.train_time = 0.0
        self.health = LossHealth()
        self.unconfirmed: int | None = None  # the step of the newest checkpoint no healthy loss has confirmed yet
        self.resumed_from: int | None = None
        # (first step, worst ratio) of the suspect losses since the last good checkpoint
        self.suspect: tuple[int, float] | None = None

    # -- state ---------------------------------------------------------------------------
    def save(self) -> Path | None:
        """Write a checkpoint; weights that are not finite are never saved (the run stops instead).
        Every rank checks them (they are identical), so every rank stops together."""
        if not self._weights_finite():
            self._diverged("the weights are not finite", at=self.step)  # the step that made them
        self.unconfirmed = self.step  # on every rank, so all keep the same account
        if self.run_dir is None or not self.dist.is_main:
            return None
        meta = dict(self.meta, train_time_s=self.train_time, world_size=self.dist.world,
                    loss_median=self.health.median)
        return save_checkpoint(
            self.run_dir, self.step, self.model, self.ema, self.optimizer, meta, keep=self.cfg.keep_checkpoints
        )

    def _weights_finite(self) -> bool:
        tensors = [t for m in (self.model, self.ema) for t in m.state_dict().values() if t.is_floating_point()]
        return bool(torch.stack([torch.isfinite(t).all() for t in tensors]).all()) if tensors else True

    def restore(self, path: Path) -> None:
        tensors, meta = load_checkpoint(path)
        try:
            self.model.load_state_dict(split_prefix(tensors, "model"))
            self.ema.load_state_dict(split_prefix(tensors, "ema"))
        except RuntimeError as exc:
            first = [line.strip() for line in str(exc).splitlines() if line.strip()]
            why = first[1] if len(first) > 1 else first[0]
            raise UserError(f"checkpoint {path} does not fit this run's model: {why}") from None
        restore_optimizer(self.optimizer, tensors, meta)
        self.step = int(meta["step"])
        self.train_time = float(meta.get("train_time_s", 0.0))
        median = meta.get("loss_median")  # absent in checkpoints written before it was stored
        self.health = LossHealth(float(median) if isinstance(median, (int, float)) else None)
        self.resumed_from = self.unconfirmed = self.step

    # -- one step ------------------------------------------------------------------------
    def _generators(self, step: int) -> tuple[torch.Generator, torch.Generator]:
        seed = step_seed(self.cfg.seed, self.dist.rank, step)
        torch.manual_seed(seed)  # dropout and any other global-RNG use
        data_gen = torch.Generator().manual_seed(seed)
        noise_gen = data_gen if self.device.type == "cpu" else torch.Generator(self.device).manual_seed(seed)
        return data_gen, noise_gen

    def train_step(self) -> dict:
        cfg = self.cfg
        data_gen, noise_gen = self._generators(self.step)
        batch = self.batch_fn(data_gen, self.step)
        x = batch["x"].to(self.device, non_blocking=True)
        cond = {k: v.to(self.device) if torch.is_tensor(v) else v for k, v in (batch.get("cond") or {}).items()}
        mask = batch.get("loss_mask")
        mask = mask.to(self.device) if mask is not None else None
        for group in self.optimizer.param_groups:
            group["lr"] = cfg.lr * lr_factor(cfg, self.step)
        self.model.train()
        autocast = (
            torch.autocast(self.device.type, dtype=torch.bfloat16) if cfg.precision == "bf16" else nullcontext()
        )
        with autocast:
            loss, stats = self.objective.loss(
                self.forward_model, x, step=self.step, generator=noise_gen, cond=cond, loss_mask=mask
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(self.params, self.dist.world)
        if cfg.grad_clip > 0:
            grad_norm = torch.nn.utils.clip_grad_norm_(self.params, cfg.grad_clip)
        else:
            norms = [p.grad.norm() for p in self.params if p.grad is not None]
            grad_norm = torch.linalg.vector_norm(torch.stack(norms))
        self._check_health(loss, stats["mse"], grad_norm)
        try:
            self.optimizer.step()
        except RuntimeError as exc:  # e.g. lr 1e39: the step size does not fit in float32
            if "overflow" not in str(exc):
                raise
            self._diverged("the optimizer step overflows float32: train.lr or train.weight_decay is too large")
        with torch.no_grad():
            ema_params = list(self.ema.parameters())
            model_params = list(self.model.parameters())
            torch._foreach_lerp_(ema_params, model_params, 1.0 - cfg.ema_decay)
            for b_ema, b in zip(self.ema.buffers(), self.model.buffers(), strict=True):
                b_ema.copy_(b)
        self.step += 1
        return {"loss": loss.detach(), "mse": stats["mse"], "lambda": stats["lambda"], "grad_norm": grad_norm.detach(),
                "lr": self.optimizer.param_groups[0]["lr"], "batch": int(x.shape[0])}

    # -- divergence ----------------------------------------------------------------------
    def _check_health(self, loss: torch.Tensor, mse: torch.Tensor, grad_norm: torch.Tensor) -> None:
        """Judge this step's loss, computed from the current weights, before the optimizer moves them:
        a healthy one confirms the checkpoint of these weights, a diverged one stops the run. The
        values are averaged over ranks, so every rank decides the same."""
        shared = average_over_ranks(torch.stack([loss.detach().float(), mse.float()]), self.dist.world)
        # the averaged gradient's norm is the same on every rank already; one host sync for all three
        loss_value, mse_value, grad_value = torch.cat([shared, grad_norm.detach().float().reshape(1)]).tolist()
        verdict, ratio = self.health.judge(mse_value if math.isfinite(loss_value) else math.nan)
        if verdict == "healthy" and self.unconfirmed == self.step:
            if self.run_dir is not None and self.dist.is_main:
                mark_good(self.run_dir, self.step)
            self.unconfirmed, self.suspect = None, None
        elif verdict == "suspect":
            first, worst = self.suspect or (self.step + 1, ratio)
            self.suspect = (first, max(ratio, worst))
        if verdict == "diverged":
            if not math.isfinite(ratio):
                self._diverged("the loss is not finite")
            self._diverged(f"the loss ({mse_value:.3g}) is {ratio:.3g} times its running median "
                           f"({self.health.median:.3g})")
        if not math.isfinite(grad_value):
            self._diverged("the gradient is not finite")

    def _diverged(self, why: str, at: int | None = None) -> NoReturn:
        """Stop the run with one line: set aside the checkpoints newer than the last good one, so
        --resume continues from it, and say so. `at`: the step named (default: the one under way)."""
        lr = self.optimizer.param_groups[0]["lr"]
        head = (f"training diverged at step {self.step + 1 if at is None else at}: {why} (lr {lr:.3g}); "
                "nothing was saved from it")
        advice = (". Lower train.lr or set train.grad_clip, then --resume (it continues from the last good one) "
                  "or start afresh")
        if self.run_dir is None or not self.dist.is_main:
            raise UserError(head + (f" (rank {self.dist.rank}; rank 0 names the last good checkpoint)"
                                    if self.dist.world > 1 else "") + advice)
        good = last_good_checkpoint(self.run_dir)
        # without a record, checkpoints older than the one this process resumed from are left alone
        after = checkpoint_step(good) if good else (self.resumed_from or 0) - 1
        moved = set_aside(self.run_dir, after)
        where = f"; the last good checkpoint is {good}" if good else "; no checkpoint is known to be good"
        if moved:
            where += (f"; the {len(moved)} newer one{'s' if len(moved) > 1 else ''} "
                      f"{'were' if len(moved) > 1 else 'was'} renamed aside to {', '.join(p.name for p in moved)}")
        raise UserError(head + where + advice)

    def _last_saved(self) -> str:
        """The checkpoint a --resume would continue from, in words."""
        latest = latest_checkpoint(self.run_dir) if self.run_dir is not None and self.dist.is_main else None
        return f"checkpoint {latest}; continue with --resume" if latest else "the start (no checkpoint yet)"

    # -- the loop ------------------------------------------------------------------------
    def fit(self, resume: bool = False, callback: Callable[[Trainer], None] | None = None) -> dict:
        cfg = self.cfg
        console = Console()
        # a live bar on a terminal; piped or logged output gets a plain line every few seconds instead
        plain = self.progress and not console.is_terminal
        say = console.print if self.progress else (lambda *a, **k: None)
        resume_step = None
        if resume and self.run_dir is not None:
            latest = latest_checkpoint(self.run_dir)
            if latest is not None:
                self.restore(latest)
                resume_step = self.step
                say(f"resuming from step {self.step} ({latest})", soft_wrap=True, highlight=False)
            else:
                say(f"no checkpoint in {self.run_dir} to resume: starting at step 0", soft_wrap=True, highlight=False)
        log = MetricsLog(self.run_dir / "metrics.csv", resume_step) if self.run_dir and self.dist.is_main else None
        window: list[dict] = []
        last_t = time.perf_counter()
        last_step = start_step = self.step
        last_line, line_step = last_t, self.step
        row: dict = {}
        info = ""
        with training_bar(self.progress and not plain) as bar, deferred_signals(cfg.signal_grace_s) as signals:
            task = bar.add_task("train", total=max(cfg.steps, self.step), completed=self.step, info="")
            if self.step >= cfg.steps:
                say(f"the run is already at step {self.step} (steps: {cfg.steps}); nothing to train")
            if cfg.compile and not self.compiled:
                say("torch.compile is skipped on the CPU (a large network's first compiled step takes many "
                    "minutes there); --set train.compile_cpu=true compiles anyway")
            if self.compiled:
                say("torch.compile: the first step compiles the model (minutes for a large "
                    "network); a new call mode, such as λ > 0, compiles once more when first met")
            try:
                while self.step < cfg.steps:
                    t0 = time.perf_counter()
                    window.append(self.train_step())
                    self.train_time += time.perf_counter() - t0
                    now = time.perf_counter()
                    if self.step % cfg.log_every == 0 or self.step == cfg.steps:
                        rate = (self.step - last_step) / max(now - last_t, 1e-9)
                        row = {
                            "step": self.step,
                            "loss": float(torch.stack([w["loss"] for w in window]).mean()),
                            "mse": float(torch.stack([w["mse"] for w in window]).mean()),
                            "lambda": window[-1]["lambda"],
                            "lr": window[-1]["lr"],
                            "grad_norm": float(torch.stack([w["grad_norm"] for w in window]).mean()),
                            "steps_per_s": rate,
                            "samples_per_s": rate * window[-1]["batch"] * self.dist.world,
                            "train_time_s": self.train_time,
                        }
                        if log is not None:
                            log.write(row)
                        info = f"loss {row['loss']:.4f} λ {row['lambda']:.2f} {rate:.1f} it/s"
                        bar.update(task, completed=self.step, info=info)
                        window.clear()
                        last_t, last_step = now, self.step
                    if plain and (now - last_line >= progress_lines.PLAIN_PROGRESS_EVERY_S or self.step == cfg.steps):
                        rate = (self.step - line_step) / max(now - last_line, 1e-9)
                        say(f"train {self.step}/{cfg.steps}  {info or f'{rate:.2f} it/s'}", highlight=False)
                        last_line, line_step = now, self.step
                    if cfg.ckpt_every > 0 and self.step % cfg.ckpt_every == 0 and self.step < cfg.steps:
                        self.save()
                    if callback is not None:
                        callback(self)
                    if signals["signum"] is not None:
                        signals["settled"]()
                        raise Interrupted(signals["signum"])
            except Aborted as stop:  # stop now, save nothing half-done
                say(f"aborted during step {self.step + 1}: {stop}; nothing saved since "
                    f"{self._last_saved()}", soft_wrap=True, highlight=False)
                raise
            except KeyboardInterrupt as stop:
                saved = self.save() if self.step > start_step else None
                where = f"saved {saved}; continue with --resume" if saved else "nothing new to save"
                by = f" by {stop}" if str(stop) else ""
                say(f"interrupted{by} at step {self.step}: {where}", soft_wrap=True, highlight=False)
                raise
        if not row and log is not None:  # resumed at or past --steps: nothing was trained
            row = log.last_row()
        if self.step > start_step:
            self.save()
        result = {"steps": self.step, "final_loss": row.get("loss"), "train_time_s": self.train_time,
                  "threads": self.threads}
        if self.suspect is not None:  # the weights since the last good checkpoint may be going astray
            good = last_good_checkpoint(self.run_dir) if self.run_dir is not None else None
            result["last_good_checkpoint"] = str(good) if good else None
            if self.dist.is_main:
                Console(stderr=True).print(
                    f"warning: since step {self.suspect[0]} the loss has been up to {self.suspect[1]:.3g} times its "
                    f"running median (over {SUSPECT_FACTOR:g} is suspicious) and no later checkpoint was confirmed "
                    f"good; the last good checkpoint is {good or 'unknown'}", soft_wrap=True, highlight=False,
                    markup=False, style="yellow")
        return result
