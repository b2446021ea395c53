"""The MMF objective family against independently written losses and closed forms."""

import pytest
import torch
from mmf_reference import (
    GaussianAverageVelocity,
    meanflow_as_published,
    reference_flow_matching_loss,
    reference_meanflow_loss,
    reference_mmf_loss,
)

from mmftraj.core import ModularMeanFlow, ObjectiveConfig, TimeSampler, make_lambda_schedule, sample
from mmftraj.core.jvp import JVP_BACKENDS
from mmftraj.errors import UserError
from mmftraj.models.mlp import MLPConfig, TimeMLP
from mmftraj.models.transformer import TransformerConfig, build_transformer


def _mlp(dtype=torch.float64, seed=0):
    torch.manual_seed(seed)
    model = TimeMLP(MLPConfig(dim=3, hidden=32, depth=2, time_dim=16, freq_dim=8)).to(dtype)
    # Non-trivial output layer so gradients and JVPs are not dominated by the initialisation.
    return model


def _batch(n=16, d=3, dtype=torch.float64, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g, dtype=dtype) * 1.5 + 0.3
    noise = torch.randn(n, d, generator=g, dtype=dtype)
    r, t = TimeSampler("uniform", equal_fraction=0.25).sample(n, g)
    return x, noise, r.to(dtype), t.to(dtype)


def _grads(model, loss):
    model.zero_grad()
    loss.backward()
    return torch.cat([p.grad.reshape(-1).clone() for p in model.parameters()])


@pytest.mark.parametrize("tangent", ["conditional", "model"])
@pytest.mark.parametrize("p", [0.0, 1.0])
def test_lambda_zero_is_meanflow(tangent, p):
    model = _mlp()
    x, noise, r, t = _batch()
    obj = ModularMeanFlow(ObjectiveConfig(variant="meanflow", jvp="exact", tangent=tangent, adaptive_p=p))
    ours, _ = obj.loss(model, x, noise=noise, r=r, t=t)
    g_ours = _grads(model, ours)
    ref = reference_meanflow_loss(model, x, noise, r, t, p=p, tangent=tangent)
    g_ref = _grads(model, ref)
    assert torch.allclose(ours, ref, rtol=1e-12, atol=1e-12)
    assert torch.allclose(g_ours, g_ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("tangent", ["conditional", "model"])
@pytest.mark.parametrize("lam", [0.3, 1.0])
def test_mmf_with_gradients_through_dudt_matches_the_reference(tangent, lam):
    """λ > 0 with the exact backend takes u on the r < t rows from the JVP pass itself."""
    model = _mlp()
    x, noise, r, t = _batch()
    obj = ModularMeanFlow(ObjectiveConfig(variant="mmf", jvp="exact", tangent=tangent))
    ours, _ = obj.loss(model, x, noise=noise, r=r, t=t, lam=lam)
    g_ours = _grads(model, ours)
    ref = reference_mmf_loss(model, x, noise, r, t, lam, tangent=tangent)
    g_ref = _grads(model, ref)
    assert torch.allclose(ours, ref, rtol=1e-12, atol=1e-12)
    assert torch.allclose(g_ours, g_ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_r_equal_t_is_flow_matching(lam):
    model = _mlp()
    x, noise, _, t = _batch()
    obj = ModularMeanFlow(ObjectiveConfig(variant="mmf", jvp="exact"))
    ours, _ = obj.loss(model, x, noise=noise, r=t.clone(), t=t, lam=lam)
    g_ours = _grads(model, ours)
    ref = reference_flow_matching_loss(model, x, noise, t)
    g_ref = _grads(model, ref)
    assert torch.allclose(ours, ref, rtol=1e-12)
    assert torch.allclose(g_ours, g_ref, rtol=1e-9, atol=1e-12)


def test_fm_variant_samples_r_equal_t():
    obj = ModularMeanFlow(ObjectiveConfig(variant="fm"))
    r, t = obj.time_sampler.sample(1000, torch.Generator().manual_seed(0))
    assert torch.equal(r, t)


@pytest.mark.parametrize("backend", ["exact", "fd-central"])
def test_loss_value_independent_of_lambda_and_gradient_affine(backend):
    model = _mlp()
    x, noise, r, t = _batch()
    obj = ModularMeanFlow(ObjectiveConfig(variant="mmf", jvp=backend, tangent="conditional"))
    values, grads = {}, {}
    for lam in (0.0, 0.3, 1.0):
        loss, _ = obj.loss(model, x, noise=noise, r=r, t=t, lam=lam)
        values[lam] = loss.detach()
        grads[lam] = _grads(model, loss)
    assert torch.allclose(values[0.0], values[0.3], rtol=1e-12) and torch.allclose(values[0.0], values[1.0], rtol=1e-12)
    assert (grads[1.0] - grads[0.0]).norm() > 1e-3 * grads[0.0].norm()  # λ really changes the gradient
    expected = 0.7 * grads[0.0] + 0.3 * grads[1.0]
    assert torch.allclose(grads[0.3], expected, rtol=1e-7, atol=1e-10)


def _attention_model(dtype):
    torch.manual_seed(0)
    cfg = TransformerConfig(horizon=8, dim_in=3, width=32, depth=1, heads=4, patch=1)
    model = build_transformer(cfg).to(dtype)
    with torch.no_grad():  # leave the zero-initialised gates/output so derivatives are non-trivial
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.attention_backend = "math"
    return model


@pytest.mark.parametrize("net", ["mlp", "attention"])
def test_exact_jvp_matches_float64_finite_difference(net):
    model = _mlp() if net == "mlp" else _attention_model(torch.float64)
    shape = (6, 3) if net == "mlp" else (6, 8, 3)
    g = torch.Generator().manual_seed(3)
    z, v = torch.randn(shape, generator=g, dtype=torch.float64), torch.randn(shape, generator=g, dtype=torch.float64)
    r = torch.rand(6, generator=g, dtype=torch.float64) * 0.4
    t = r + 0.3
    exact = JVP_BACKENDS["exact"](model, z, r, t, v)
    h = 1e-5
    fd = (model(z + h * v, r, t + h) - model(z - h * v, r, t - h)) / (2 * h)
    assert torch.allclose(exact, fd, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("net", ["mlp", "attention"])
@pytest.mark.parametrize("backend,tol", [("fd-central", 1e-3), ("fd-forward", 2e-2)])
def test_every_backend_agrees_with_exact(net, backend, tol):
    model = _mlp(torch.float32) if net == "mlp" else _attention_model(torch.float32)
    shape = (32, 3) if net == "mlp" else (32, 8, 3)
    g = torch.Generator().manual_seed(4)
    z, v = torch.randn(shape, generator=g), torch.randn(shape, generator=g)
    r = torch.rand(32, generator=g) * 0.5
    t = r + torch.rand(32, generator=g) * 0.5
    exact = JVP_BACKENDS["exact"](model, z, r, t, v)
    approx = JVP_BACKENDS[backend](model, z, r, t, v, u=model(z, r, t), eps=ObjectiveConfig().fd_eps)
    rel = (approx - exact).norm() / exact.norm()
    assert rel < tol, f"{backend} relative error {rel:.2e}"


@pytest.mark.parametrize("lam", [0.0, 1.0])
def test_default_backend_gradient_matches_exact(lam):
    """The default (fd-central) backend's parameter gradients agree with the exact backend's."""
    model = _mlp(torch.float32)
    x, noise, r, t = _batch(n=64, dtype=torch.float32)
    grads = {}
    for backend in ("exact", ObjectiveConfig().jvp):
        obj = ModularMeanFlow(ObjectiveConfig(variant="mmf", jvp=backend))
        loss, _ = obj.loss(model, x, noise=noise, r=r, t=t, lam=lam)
        grads[backend] = _grads(model, loss)
    g_exact, g_default = grads["exact"], grads[ObjectiveConfig().jvp]
    assert (g_default - g_exact).norm() / g_exact.norm() < 5e-3


# -- exact Gaussian flows ----------------------------------------------------------------------
MU, LOG_S = torch.tensor([1.5, -0.5], dtype=torch.float64), torch.log(torch.tensor([0.5, 2.0], dtype=torch.float64))


def test_gaussian_one_step_with_exact_u_reproduces_data_moments():
    model = GaussianAverageVelocity(MU, LOG_S)
    noise = torch.randn(200_000, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = sample(model, noise, steps=1, mode="mean")
    assert torch.allclose(x.mean(0), MU, atol=0.02)
    assert torch.allclose(x.var(0), torch.exp(2 * LOG_S), rtol=0.02)
    # With exactly this noise, one step is exactly the affine transport μ + s·ε.
    assert torch.allclose(x, MU + torch.exp(LOG_S) * noise, atol=1e-10)


@pytest.mark.parametrize("backend,tol", [("exact", 1e-10), ("fd-central", 1e-5), ("fd-forward", 1e-2)])
def test_gaussian_identity_residual_is_zero(backend, tol):
    """u = v - (t - r)·du/dt along the marginal velocity, under each of the project's JVPs."""
    model = GaussianAverageVelocity(MU, LOG_S)
    g = torch.Generator().manual_seed(1)
    z = torch.randn(64, 2, generator=g, dtype=torch.float64) * 2
    r = torch.rand(64, generator=g, dtype=torch.float64) * 0.6
    t = r + 0.05 + torch.rand(64, generator=g, dtype=torch.float64) * 0.3
    v = model.velocity(z, t)
    with torch.no_grad():
        dudt = JVP_BACKENDS[backend](model, z, r, t, v, u=model(z, r, t), eps=1e-4 if backend != "exact" else 0.0)
        residual = model(z, r, t) + (t - r)[:, None] * dudt - v
    assert residual.abs().max() < tol


@pytest.mark.parametrize("variant", ["meanflow", "mmf"])
def test_training_the_gaussian_family_recovers_the_exact_u(variant):
    torch.manual_seed(0)
    model = GaussianAverageVelocity(torch.zeros(2), torch.zeros(2))
    obj = ModularMeanFlow(ObjectiveConfig(variant=variant, jvp="exact", adaptive_p=0.0, lambda_warmup=150,
                                          equal_fraction=0.5, time_sampler="uniform"))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(0)
    for step in range(300):
        x = MU + torch.exp(LOG_S) * torch.randn(512, 2, generator=g, dtype=torch.float64)
        loss, _ = obj.loss(model, x, step=step, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.allclose(model.mu.detach(), MU, atol=0.08)
    assert torch.allclose(model.log_s.detach(), LOG_S, atol=0.08)


def _train_from_the_truth(variant: str, steps: int = 200) -> GaussianAverageVelocity:
    """The exact Gaussian family started at the true (μ, s) and trained with `variant`, λ warmed
    to 1 within 20 steps (uniform times, half the rows with r < t, plain L2, exact JVP)."""
    torch.manual_seed(0)
    model = GaussianAverageVelocity(MU, LOG_S)
    obj = ModularMeanFlow(ObjectiveConfig(variant=variant, jvp="exact", adaptive_p=0.0, lambda_warmup=20,
                                          equal_fraction=0.5, time_sampler="uniform"))
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(0)
    for step in range(steps):
        x = MU + torch.exp(LOG_S) * torch.randn(512, 2, generator=g, dtype=torch.float64)
        loss, _ = obj.loss(model, x, step=step, generator=g)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


def test_the_conditional_tangent_with_lambda_one_leaves_the_truth_and_the_model_tangent_stays():
    """The headline collapse as a property of the loss: with λ > 0 and the conditional tangent
    (`mmf-paper`) the truth is not a fixed point, and the learned spread shrinks (s = 2 → about 1
    in 200 steps); with the model's own tangent (`mmf`, `mmf-full`) the truth stays put, as with
    MeanFlow's λ = 0 (the test above). docs/objective.md derives why."""
    paper = _train_from_the_truth("mmf-paper")
    assert (paper.log_s.detach() - LOG_S).abs().max() > 0.4 and float(paper.log_s[1].exp()) < 1.5
    for variant in ("mmf", "mmf-full"):
        model = _train_from_the_truth(variant)
        assert (model.log_s.detach() - LOG_S).abs().max() < 0.15, variant
        assert (model.mu.detach() - MU).abs().max() < 0.1, variant


# -- samplers, schedules, bad input ------------------------------------------------------------
def test_time_sampler_orders_times_and_fixes_equal_fraction():
    for kind in ("uniform", "logit_normal"):
        r, t = TimeSampler(kind, equal_fraction=0.25).sample(1000, torch.Generator().manual_seed(0))
        assert bool((r <= t).all()) and bool(((0 <= r) & (t <= 1)).all())
        assert int((r == t).sum()) == 250


def test_time_sampler_with_its_own_r_distribution_matches_the_order_statistics():
    """MeanFlow's CIFAR-10 sampler: t ~ logitN(-0.6, 1.6), r ~ logitN(-4, 1.6), sorted. In logit
    space the r != t rows are min and max of two independent normals; compare their CDFs."""
    from math import erf, sqrt

    sampler = TimeSampler("logit_normal", -0.6, 1.6, 0.25, r_mean=-4.0, r_std=1.6)
    r, t = sampler.sample(200_000, torch.Generator().manual_seed(0))
    assert int((r == t).sum()) == 50_000 and bool((r <= t).all())
    lo, hi = torch.logit(r[50_000:].double()), torch.logit(t[50_000:].double())

    def cdf(m, mean):
        return 0.5 * (1 + erf((m - mean) / (1.6 * sqrt(2))))

    for m in (-6.0, -4.0, -2.0, -0.6, 1.0):
        a, b = cdf(m, -0.6), cdf(m, -4.0)
        assert abs(float((hi <= m).double().mean()) - a * b) < 5e-3
        assert abs(float((lo <= m).double().mean()) - (1 - (1 - a) * (1 - b))) < 5e-3
    # no own distribution is the same as t's, draw for draw
    same = TimeSampler("logit_normal", -0.6, 1.6, 0.25, r_mean=-0.6, r_std=1.6).sample(
        64, torch.Generator().manual_seed(1))
    default = TimeSampler("logit_normal", -0.6, 1.6, 0.25).sample(64, torch.Generator().manual_seed(1))
    assert all(torch.equal(x, y) for x, y in zip(same, default, strict=True))
    with pytest.raises(UserError, match="uniform"):
        TimeSampler("uniform", r_mean=-4.0)
    with pytest.raises(UserError, match="positive"):
        TimeSampler("logit_normal", r_std=0.0)


class _Wide(torch.nn.Module):
    """An MLP on D entries with nonlinear dependence on z, r and t (float64)."""

    def __init__(self, d, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        self.net = torch.nn.Sequential(torch.nn.Linear(d + 2, 48), torch.nn.Tanh(), torch.nn.Linear(48, d)).double()

    def forward(self, z, r, t):
        return self.net(torch.cat([z, r[:, None], t[:, None]], 1))


@pytest.mark.parametrize("d", [2, 64])
@pytest.mark.parametrize("p", [1.0, 0.75])
def test_meanflow_is_meanflow_as_published(d, p):
    """`meanflow` with no tangent setting is MeanFlow: conditional tangent, λ = 0, sg(w) on the sum."""
    model = _Wide(d)
    x, noise, r, t = _batch(n=12, d=d)
    ours, _ = ModularMeanFlow(ObjectiveConfig(variant="meanflow", jvp="exact", adaptive_p=p)).loss(
        model, x, noise=noise, r=r, t=t)
    g_ours = _grads(model, ours)
    ref = meanflow_as_published(model, x, noise, r, t, p=p)
    g_ref = _grads(model, ref)
    assert torch.allclose(ours, ref, rtol=1e-12, atol=0) and torch.allclose(g_ours, g_ref, rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("d", [2, 64])
def test_the_papers_mmf_at_lambda_one_matches_the_reference(d):
    """`mmf-paper` takes du/dt along v = ε - x and, at λ = 1, differentiates through it."""
    model = _Wide(d)
    x, noise, r, t = _batch(n=12, d=d)
    obj = ModularMeanFlow(ObjectiveConfig(variant="mmf-paper", jvp="exact"))
    assert obj.tangent == "conditional" and obj.label == "mmf-paper"
    ours, _ = obj.loss(model, x, noise=noise, r=r, t=t, lam=1.0)
    g_ours = _grads(model, ours)
    ref = reference_mmf_loss(model, x, noise, r, t, lam=1.0, tangent="conditional")
    g_ref = _grads(model, ref)
    assert torch.allclose(ours, ref, rtol=1e-12, atol=0) and torch.allclose(g_ours, g_ref, rtol=1e-9, atol=1e-13)
    assert not torch.allclose(g_ours, _grads(model, reference_mmf_loss(model, x, noise, r, t, lam=0.0)))


def test_c_means_the_same_whatever_the_number_of_entries():
    """Repeating every entry k times multiplies S by k; the weight is 1/(S + c)^p with the same c,
    so a residual of per-sample sum S gets the same weight in D = 2 as in D = 64."""
    from mmftraj.core.objective import adaptive_weight, squared_error

    delta2 = torch.tensor([[0.01, 0.02], [1.0, -0.5]], dtype=torch.float64)
    delta64 = delta2.repeat_interleave(32, 1) / 32 ** 0.5  # same per-sample sum of squares
    s2, s64 = squared_error(delta2), squared_error(delta64)
    assert torch.allclose(s2, s64, rtol=1e-12)
    w2, w64 = adaptive_weight(s2, 1.0, 1e-3), adaptive_weight(s64, 1.0, 1e-3)
    assert torch.allclose(w2, w64, rtol=1e-12)
    assert torch.allclose(w2, 1 / (s2 + 1e-3), rtol=1e-12)


def test_variants_resolve_their_tangent_and_labels_name_overrides():
    from mmftraj.core.objective import variant_label

    own = {v: ModularMeanFlow(ObjectiveConfig(variant=v)).tangent for v in ("meanflow", "mmf-paper", "mmf", "mmf-full")}
    assert own == {"meanflow": "conditional", "mmf-paper": "conditional", "mmf": "model", "mmf-full": "model"}
    assert variant_label(ObjectiveConfig(variant="meanflow", tangent="model")) == "meanflow-tmodel"
    assert variant_label(ObjectiveConfig(variant="mmf-full", tangent="conditional")) == "mmf-full-tcond"
    assert variant_label(ObjectiveConfig(variant="mmf", tangent="model")) == "mmf"
    with pytest.raises(UserError, match="objective.tangent"):
        ModularMeanFlow(ObjectiveConfig(tangent="marginal"))


def test_fd_forward_under_autocast_does_not_reuse_a_rounded_u():
    """A bf16 u as fd-forward's primal puts its rounding error / ε into du/dt; the loss recomputes
    u in float32 for the derivative, so the bf16 loss stays near the float32 one."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 64), torch.nn.SiLU(), torch.nn.Linear(64, 3))

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.m = model

        def forward(self, z, r, t):
            return self.m(torch.cat([z, r[:, None], t[:, None]], 1))

    net = Net()
    x, noise, r, t = _batch(n=256, d=3, dtype=torch.float32)
    obj = ModularMeanFlow(ObjectiveConfig(variant="meanflow", jvp="fd-forward", fd_eps=1e-3, adaptive_p=0))
    with torch.no_grad():
        full, _ = obj.loss(net, x, noise=noise, r=r, t=t)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low, _ = obj.loss(net, x, noise=noise, r=r, t=t)
    # measured: 2e-5 relative with the float32 primal, 9e-3 when the bf16 u is reused
    assert abs(low.item() - full.item()) < 1e-3 * full.item(), (low.item(), full.item())


@pytest.mark.parametrize("backend", ["fd-central", "fd-forward"])
def test_finite_differences_stay_inside_r_to_one(backend):
    """Every time a finite difference evaluates lies in [r, 1]; near the ends it steps one-sided."""
    seen = []

    def fn(z, r, t):
        seen.append((r.clone(), t.clone()))
        return z * t[:, None] ** 2 + r[:, None]

    r = torch.tensor([0.0, 0.5, 0.999, 0.2], dtype=torch.float64)
    t = torch.tensor([0.5, 0.5005, 0.9995, 1.0], dtype=torch.float64)
    z = torch.ones(4, 2, dtype=torch.float64)
    v = torch.zeros(4, 2, dtype=torch.float64)
    du = JVP_BACKENDS[backend](fn, z, r, t, v, eps=2e-3)
    for r_seen, t_seen in seen:
        assert bool((t_seen <= 1).all()) and bool((t_seen >= r_seen - 1e-15).all())
    exact = 2 * t[:, None] * z  # ∂/∂t of z·t² along (v = 0, 0, 1)
    assert torch.allclose(du, exact, atol=5e-3)


def test_lambda_schedules():
    lin = make_lambda_schedule("linear", start=100, duration=200)
    assert lin(0) == 0.0 and lin(200) == 0.5 and lin(300) == 1.0 and lin(10_000) == 1.0
    cos = make_lambda_schedule("cosine", start=0, duration=100)
    assert cos(0) == 0.0 and abs(cos(50) - 0.5) < 1e-12 and cos(100) == 1.0
    assert ModularMeanFlow(ObjectiveConfig(variant="meanflow")).lam(10**6) == 0.0
    assert ModularMeanFlow(ObjectiveConfig(variant="mmf-full")).lam(0) == 1.0
    with pytest.raises(UserError, match="valid choices"):
        make_lambda_schedule("exponential")


def test_k_step_sampler_on_custom_grid_and_euler():
    model = GaussianAverageVelocity(MU, LOG_S)
    noise = torch.randn(1000, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    one = sample(model, noise, steps=1)
    grid = torch.tensor([1.0, 0.7, 0.2, 0.0], dtype=torch.float64)
    assert torch.allclose(sample(model, noise, grid=grid), one, atol=1e-10)  # exact u: any grid agrees
    euler = sample(model, noise, steps=1000, mode="euler")  # first-order: error ~ 10/steps here
    assert torch.allclose(euler, one, atol=2e-2)
    with pytest.raises(UserError):
        sample(model, noise, grid=torch.tensor([0.0, 1.0]))


@pytest.mark.parametrize("backend", ["fd-central", "exact"])  # exact: u on the r < t rows from its pass
def test_bf16_autocast_keeps_the_derivative_in_float32(backend):
    """A model that answers in bf16 under autocast: the loss runs, and equals the fp32 loss closely."""
    model = _mlp(torch.float32)
    x, noise, r, t = _batch(n=32, dtype=torch.float32)
    obj = ModularMeanFlow(ObjectiveConfig(variant="mmf", jvp=backend))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low, _ = obj.loss(model, x, noise=noise, r=r, t=t, lam=1.0)
    low.backward()
    with torch.no_grad():
        full, _ = obj.loss(model, x, noise=noise, r=r, t=t, lam=1.0)
    assert low.dtype == torch.float32 and torch.isfinite(low)
    assert abs(low.item() - full.item()) < 0.05 * full.item()


class _OneOutputTooFew(torch.nn.Module):
    """Returns (batch, d - 1): would broadcast silently against (batch, d) without the check."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(3, 1)

    def forward(self, z, r, t):
        return self.linear(z)


@pytest.mark.parametrize("backend", ["fd-central", "exact"])  # exact at λ = 1: u from the JVP pass
def test_a_model_output_of_the_wrong_shape_is_refused(backend):
    x, noise, r, t = _batch(d=3, dtype=torch.float32)
    objective = ModularMeanFlow(ObjectiveConfig(variant="mmf-full", jvp=backend))
    with pytest.raises(UserError, match=r"returned \(\d+, 1\) for an input z of shape \(\d+, 3\)"):
        objective.loss(_OneOutputTooFew(), x, noise=noise, r=r, t=t)
    with pytest.raises(UserError, match="must have z's shape"):
        sample(_OneOutputTooFew(), noise, steps=1)
