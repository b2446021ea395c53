"""The Modular MeanFlow objective family (docs/objective.md), one object for every variant.

    Δ = u_θ(z_t, r, t) + (t - r)·SG_λ[du/dt] - v,   SG_λ[a] = λ·a + (1 - λ)·stopgrad(a)
    loss = mean_batch( sg(w) · S ),   S = Σ over entries of Δ²,   w = 1 / (S + c)^p

This is MeanFlow's weighting: c acts on the per-sample *sum* of squares, so it means the same
whatever the number of entries D (a per-entry mean would scale its effect by D).

`fm` fixes r = t; `meanflow` fixes λ = 0; `mmf` and `mmf-paper` warm λ from 0 to 1; `mmf-full`
fixes λ = 1. The forward value of the loss never depends on λ; only its gradient does (affinely).

The z-direction of du/dt (`tangent`) is either the conditional velocity v = ε - x (MeanFlow's
and the MMF paper's choice; `meanflow` and `mmf-paper` use it) or the model's own velocity
sg(u(z_t, t, t)) (`mmf`, `mmf-full`). `objective.tangent` overrides a variant's own choice.
With λ > 0 the conditional choice makes the gradient depend on the variance of ε - x given z_t,
which pulls ∂u/∂z towards I/(t - r) (docs/objective.md derives it); the model tangent is a
function of z_t alone, so the fixed point stays the true average velocity.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from ..errors import UserError, choice_error
from .jvp import PRIMAL_BACKENDS, get_jvp_backend
from .schedules import LambdaSchedule, make_lambda_schedule
from .time_samplers import TimeSampler

VARIANTS = ("fm", "meanflow", "mmf", "mmf-paper", "mmf-full")
# The z-direction each variant takes du/dt along unless objective.tangent names one.
VARIANT_TANGENT = {"fm": "conditional", "meanflow": "conditional", "mmf-paper": "conditional",
                   "mmf": "model", "mmf-full": "model"}
TANGENTS = ("auto", "conditional", "model")


@dataclass
class ObjectiveConfig:
    """Everything that selects a member of the objective family. Defaults follow MeanFlow."""

    variant: Literal["fm", "meanflow", "mmf", "mmf-paper", "mmf-full"] = "mmf"
    time_sampler: Literal["uniform", "logit_normal"] = "logit_normal"
    time_mean: float = -0.4
    time_std: float = 1.0
    # MeanFlow's CIFAR-10 recipe draws the second time from its own logit-normal; None: t's
    time_r_mean: float | None = None
    time_r_std: float | None = None
    equal_fraction: float = 0.75  # share of r = t samples (ignored by `fm`, which uses 1)
    lambda_schedule: Literal["linear", "cosine", "constant"] = "linear"  # used by `mmf`, `mmf-paper`
    lambda_start: int = 0  # step at which the warm-up begins
    lambda_warmup: int = 1000  # steps for λ to go from 0 to 1
    lambda_value: float = 0.5  # for lambda_schedule = constant
    jvp: Literal["exact", "fd-central", "fd-forward", "dual"] = "fd-central"  # dual: models with a tangent forward
    # Direction of du/dt in z: the conditional velocity ε - x (MeanFlow) or the model's own
    # marginal estimate sg(u(z, t, t)), which keeps the λ > 0 gradient free of the conditional
    # velocity's variance (costs one no-grad forward on the r < t rows). auto: the variant's own.
    tangent: Literal["auto", "conditional", "model"] = "auto"
    fd_eps: float = 2e-3  # central differences: ~1e-4 relative error in fp32 (measured, tests)
    adaptive_p: float = 1.0  # 0 is plain L2
    adaptive_c: float = 1e-3  # on the per-sample sum of squares, as in MeanFlow's code


def check_ranges(cfg: ObjectiveConfig) -> None:
    """Refuse values the objective would turn into NaN losses or silently misread (a negative
    warm-up, a negative adaptive c dividing by zero), all in one line."""
    positive_or_none = [("time_r_std", cfg.time_r_std is None or cfg.time_r_std > 0, "positive")]
    rules = [("time_std", cfg.time_std > 0, "positive"), *positive_or_none,
             ("equal_fraction", 0 <= cfg.equal_fraction <= 1, "in [0, 1]"),
             ("lambda_start", cfg.lambda_start >= 0, "0 or more"),
             ("lambda_warmup", cfg.lambda_warmup >= 0, "0 or more"),
             ("lambda_value", 0 <= cfg.lambda_value <= 1, "in [0, 1]"), ("fd_eps", cfg.fd_eps > 0, "positive"),
             ("adaptive_p", cfg.adaptive_p >= 0, "0 (plain L2) or more"),
             ("adaptive_c", cfg.adaptive_c > 0, "positive")]
    bad = [f"objective.{name} must be {want}, got {getattr(cfg, name)}" for name, ok, want in rules if not ok]
    if bad:
        raise UserError("; ".join(bad))


def resolve_tangent(cfg: ObjectiveConfig) -> str:
    """The tangent a config trains with: its own setting, or its variant's when `auto`."""
    if cfg.tangent not in TANGENTS:
        raise choice_error("objective.tangent", cfg.tangent, TANGENTS)
    return VARIANT_TANGENT.get(cfg.variant, "model") if cfg.tangent == "auto" else cfg.tangent


def parse_label(label: str) -> tuple[str, str]:
    """(variant, tangent) from a label as `variant_label` writes it: `mmf`, `meanflow-tmodel`, ..."""
    for suffix, tangent in (("-tmodel", "model"), ("-tcond", "conditional")):
        if label.endswith(suffix) and label[: -len(suffix)] in VARIANTS:
            return label[: -len(suffix)], tangent
    if label not in VARIANTS:
        raise choice_error("objective variant", label, [*VARIANTS, "<variant>-tmodel", "<variant>-tcond"])
    return label, "auto"


def label_options(label: str) -> tuple[str, list[str]]:
    """(objective variant, `--set` overrides) that train the run a label names: `meanflow-tmodel`
    is `--objective meanflow --set objective.tangent=model`."""
    variant, tangent = parse_label(label)
    return variant, ([] if tangent == "auto" else [f"objective.tangent={tangent}"])


def variant_label(cfg: ObjectiveConfig) -> str:
    """The variant's name, with `-tmodel`/`-tcond` when its tangent is not the variant's own."""
    tangent = resolve_tangent(cfg)
    if cfg.variant == "fm" or tangent == VARIANT_TANGENT[cfg.variant]:
        return cfg.variant
    return f"{cfg.variant}-{'tmodel' if tangent == 'model' else 'tcond'}"


def _wide(a: torch.Tensor) -> torch.Tensor:
    """float32 at least: bf16/fp16 go up, float64 stays float64 (for derivative checks)."""
    return a.to(torch.promote_types(a.dtype, torch.float32))


def check_output(u: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """A model must return one velocity per input entry; broadcasting would hide a wrong shape."""
    if not torch.is_tensor(u) or u.shape != z.shape:
        got = tuple(u.shape) if torch.is_tensor(u) else type(u).__name__
        raise UserError(f"the model returned {got} for an input z of shape {tuple(z.shape)}; "
                        "u(z, r, t) must have z's shape")
    return u


def _batch_index(value: Any, idx: torch.Tensor, n: int) -> Any:
    if torch.is_tensor(value) and value.dim() > 0 and value.shape[0] == n:
        return value[idx]
    return value


class ModularMeanFlow:
    """Computes the MMF loss of a model u(z, r, t, **cond) on a batch of data x.

    `loss` runs five named steps: the path (z_t, v), the tangent direction, du/dt on the r < t
    rows, SG_λ, and MeanFlow's adaptive weighting.
    """

    def __init__(self, cfg: ObjectiveConfig | None = None, lambda_schedule: LambdaSchedule | None = None):
        self.cfg = cfg = cfg or ObjectiveConfig()
        if cfg.variant not in VARIANTS:
            raise choice_error("objective", cfg.variant, VARIANTS)
        numbers = ("time_mean", "time_std", "time_r_mean", "time_r_std", "equal_fraction", "lambda_value", "fd_eps",
                   "adaptive_p", "adaptive_c")
        bad = [n for n in numbers if getattr(cfg, n) is not None and not math.isfinite(getattr(cfg, n))]
        if bad:
            raise UserError("; ".join(f"objective.{n} must be a finite number, got {getattr(cfg, n)}" for n in bad))
        check_ranges(cfg)
        self.tangent = resolve_tangent(cfg)
        self.label = variant_label(cfg)
        self.jvp_fn = get_jvp_backend(cfg.jvp)
        equal = 1.0 if cfg.variant == "fm" else cfg.equal_fraction
        self.time_sampler = TimeSampler(cfg.time_sampler, cfg.time_mean, cfg.time_std, equal,
                                        cfg.time_r_mean, cfg.time_r_std)
        if lambda_schedule is not None:
            self.lambda_schedule = lambda_schedule
        elif cfg.variant == "meanflow" or cfg.variant == "fm":
            self.lambda_schedule = make_lambda_schedule("constant", 0.0)
        elif cfg.variant == "mmf-full":
            self.lambda_schedule = make_lambda_schedule("constant", 1.0)
        else:
            self.lambda_schedule = make_lambda_schedule(
                cfg.lambda_schedule, cfg.lambda_value, cfg.lambda_start, cfg.lambda_warmup
            )

    @property
    def sampling_mode(self) -> str:
        """`fm` models know only u(z, t, t) = v, so they sample with Euler steps; others jump."""
        return "euler" if self.cfg.variant == "fm" else "mean"

    def lam(self, step: int) -> float:
        return float(self.lambda_schedule(step))

    def loss(
        self,
        model,
        x: torch.Tensor,
        step: int = 0,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        r: torch.Tensor | None = None,
        t: torch.Tensor | None = None,
        lam: float | None = None,
        loss_mask: torch.Tensor | None = None,
        cond: dict | None = None,
    ):
        """Return (loss, stats) for a batch x of shape (B, ...). `noise`, `r`, `t`, `lam` may be
        given to make the call exact; `loss_mask` (broadcastable to x) keeps entries out of S."""
        n = x.shape[0]
        cond = cond or {}
        if self.cfg.jvp == "dual" and not getattr(model, "has_tangent_forward", False):
            raise UserError("objective.jvp=dual needs a model with a tangent forward (the U-Net); "
                            "use exact, fd-central or fd-forward for this one")
        if noise is None:
            gen_device = generator.device if generator is not None else x.device
            noise = torch.randn(x.shape, generator=generator, device=gen_device, dtype=x.dtype).to(x.device)
        if r is None or t is None:
            r, t = self.time_sampler.sample(n, generator, device=x.device)
        r, t = r.to(x.dtype), t.to(x.dtype)
        lam = self.lam(step) if lam is None else float(lam)
        z, v = interpolate(x, noise, t)
        u, dudt_term = self._u_and_dudt_term(model, z, v, r, t, lam, cond)
        per_sample = squared_error(_wide(u) + dudt_term - _wide(v), loss_mask)
        loss = (adaptive_weight(per_sample, self.cfg.adaptive_p, self.cfg.adaptive_c) * per_sample).mean()
        entries = x[0].numel() if loss_mask is None else loss_mask.expand_as(x).flatten(1).sum(1).clamp_min(1)
        stats = {"mse": (per_sample.detach() / entries).mean(), "lambda": lam}
        return loss, stats

    def _u_and_dudt_term(self, model, z, v, r, t, lam, cond):
        """u(z, r, t) for every row and (t - r)·SG_λ[du/dt] (zero on r = t rows), both (B, ...)."""
        n = z.shape[0]
        # du/dt only where r < t: r = t rows are flow matching and contribute (t - r)·du/dt = 0.
        jvp_rows = torch.nonzero(r < t).squeeze(1)
        need_graph = lam != 0.0 and torch.is_grad_enabled()
        # With gradients through du/dt, a backend that returns (u, du) from one evaluation gives
        # u on its rows too, so the separate forward runs on the r = t rows only.
        share_primal = need_graph and self.cfg.jvp in PRIMAL_BACKENDS and jvp_rows.numel() > 0
        if share_primal:
            eq_rows = torch.nonzero(r >= t).squeeze(1)
            u = torch.zeros_like(_wide(z))
            if eq_rows.numel() > 0:
                eq_cond = {k: _batch_index(c, eq_rows, n) for k, c in cond.items()}
                u_eq = check_output(model(z[eq_rows], r[eq_rows], t[eq_rows], **eq_cond), z[eq_rows])
                u = u.index_put((eq_rows,), _wide(u_eq).to(u.dtype))
        else:
            u = check_output(model(z, r, t, **cond), z)
        # Kept in float32 at least: the derivative is never rounded to bf16 (a finite difference of
        # bf16 values would lose its leading digits).
        dudt_term = torch.zeros_like(_wide(u))
        if jvp_rows.numel() == 0:
            return u, dudt_term
        sub_cond = {k: _batch_index(c, jvp_rows, n) for k, c in cond.items()}

        def fn(z_, r_, t_, **tangent):
            return model(z_, r_, t_, **sub_cond, **tangent)

        z_rows, r_rows, t_rows = _wide(z[jvp_rows]), _wide(r[jvp_rows]), _wide(t[jvp_rows])
        direction = self._direction(fn, z_rows, t_rows, _wide(v[jvp_rows]))
        jvp_kwargs = dict(create_graph=need_graph, eps=self.cfg.fd_eps)
        # fd-forward reuses u as its primal; one computed under bf16/fp16 autocast would put its
        # rounding error, divided by ε, into du/dt, so the derivative recomputes u in float32.
        rounded = torch.is_autocast_enabled(z.device.type) and u.dtype != z_rows.dtype
        with _autocast_off(z.device.type):  # the derivative is taken in float32, never under autocast
            if share_primal:
                u_rows, dudt = self.jvp_fn(fn, z_rows, r_rows, t_rows, direction, return_primal=True, **jvp_kwargs)
                u = u.index_put((jvp_rows,), check_output(u_rows, z_rows).to(u.dtype))
            else:
                primal = None if rounded else _wide(u[jvp_rows])
                dudt = self.jvp_fn(fn, z_rows, r_rows, t_rows, direction, u=primal, **jvp_kwargs)
        span = (t - r)[jvp_rows].reshape((-1,) + (1,) * (z.dim() - 1))
        mixed = stop_gradient_mix(dudt, lam) if need_graph else dudt.detach()
        return u, dudt_term.index_put((jvp_rows,), (_wide(span) * mixed).to(dudt_term.dtype))

    def _direction(self, fn, z_rows, t_rows, v_rows):
        """The z-part of du/dt's tangent (its r- and t-parts are 0 and 1): v = ε - x, or the
        model's own velocity sg(u(z, t, t)) (a direction, not a derivative: it may be bf16)."""
        if self.tangent == "conditional":
            return v_rows
        with torch.no_grad():
            return _wide(fn(z_rows, t_rows, t_rows))


def interpolate(x: torch.Tensor, noise: torch.Tensor, t: torch.Tensor):
    """The path point z_t = (1 - t)·x + t·ε and its conditional velocity v = ε - x, both x's shape."""
    tt = t.reshape((-1,) + (1,) * (x.dim() - 1))
    return (1 - tt) * x + tt * noise, noise - x


def stop_gradient_mix(a: torch.Tensor, lam: float) -> torch.Tensor:
    """SG_λ[a] = λ·a + (1 - λ)·stopgrad(a): a's value, λ times its gradient."""
    return a if lam == 1.0 else lam * a + (1.0 - lam) * a.detach()


def squared_error(delta: torch.Tensor, loss_mask: torch.Tensor | None = None) -> torch.Tensor:
    """S = Σ Δ² per sample over the entries the mask keeps, shape (B,)."""
    sq = delta.pow(2)
    if loss_mask is not None:
        sq = sq * loss_mask.to(sq.dtype).expand_as(sq)
    return sq.flatten(1).sum(1)


def adaptive_weight(per_sample: torch.Tensor, p: float, c: float) -> torch.Tensor:
    """MeanFlow's sg(w) = 1 / (S + c)^p on the per-sample sum S; p = 0 is plain L2."""
    if p == 0:
        return torch.ones_like(per_sample)
    return (per_sample.detach() + c).pow(-p)


def _autocast_off(device_type: str):
    if torch.is_autocast_enabled(device_type):
        return torch.autocast(device_type=device_type, enabled=False)
    return contextlib.nullcontext()
