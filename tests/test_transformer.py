"""Temporal transformer u_θ(z, r, t, cond) and the shared time embedding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mmftraj.core import ModularMeanFlow, ObjectiveConfig, get_jvp_backend
from mmftraj.models import (
    TemporalTransformer,
    TimeEmbedding,
    TransformerConfig,
    build_transformer,
    count_parameters,
    fourier_features,
    preset_config,
)
from mmftraj.models import transformer as transformer_mod

B, H, D, C = 5, 16, 3, 4


def tiny(seed: int = 0, **kw) -> TemporalTransformer:
    torch.manual_seed(seed)
    cfg = dict(horizon=H, dim_in=D, width=32, depth=2, heads=4, cond_dim=C)
    cfg.update(kw)
    return build_transformer(TransformerConfig(**cfg))


def wake(model: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Give the zero-initialised gates/output layer random values, so every path carries signal."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.copy_(0.1 * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


def inputs(seed: int = 0, dtype=torch.float32, cond: bool = True):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(B, H, D, generator=g, dtype=dtype)
    t = torch.rand(B, generator=g, dtype=dtype)
    r = t * torch.rand(B, generator=g, dtype=dtype)
    c = torch.randn(B, C, generator=g, dtype=dtype) if cond else None
    return z, r, t, c


def test_shapes_with_and_without_cond_and_patch():
    z, r, t, c = inputs()
    assert tiny()(z, r, t, cond=c).shape == (B, H, D)
    assert tiny(cond_dim=0)(z, r, t).shape == (B, H, D)
    assert tiny(cond_dim=0)(z, r, t, cond=None).shape == (B, H, D)
    patched = wake(tiny(patch=4, pos_emb="sinusoidal"))
    u = patched(z, r, t, cond=c)
    assert u.shape == (B, H, D) and u.abs().sum() > 0
    assert patched.pos.shape == (1, H // 4, 32)


def test_bad_inputs_raise():
    z, r, t, c = inputs()
    with pytest.raises(ValueError, match="cond"):
        tiny()(z, r, t)
    with pytest.raises(ValueError, match="cond_dim=0"):
        tiny(cond_dim=0)(z, r, t, cond=c)
    with pytest.raises(ValueError, match="shape"):
        tiny()(z[:, :8], r, t, cond=c)
    with pytest.raises(ValueError, match="divisible"):
        tiny(patch=5)
    with pytest.raises(ValueError, match="attention"):
        tiny().attention_backend = "flash"


def test_initial_output_is_zero_and_output_layer_learns():
    model = tiny()
    z, r, t, c = inputs()
    u = model(z, r, t, cond=c)
    assert torch.equal(u, torch.zeros_like(u))
    u.sub(z).square().sum().backward()
    assert model.out.weight.grad.abs().sum() > 0  # adaLN-Zero: the first step moves the output layer


def test_patch_tokens_see_their_own_time_steps():
    """With patch p, changing one time step changes u at that step (tokens are unpatched in order)."""
    model = wake(tiny(patch=4, depth=0)).eval()  # no attention: each token maps only to itself
    z, r, t, c = inputs()
    z2 = z.clone()
    z2[:, 5] += 1.0  # time step 5 lives in token 1 (steps 4..7)
    diff = (model(z2, r, t, cond=c) - model(z, r, t, cond=c)).abs().sum(dim=(0, 2))
    assert (diff[4:8] > 0).all() and diff[:4].eq(0).all() and diff[8:].eq(0).all()


def test_conditioning_and_both_times_matter():
    model = wake(tiny()).eval()
    z, r, t, c = inputs()
    u = model(z, r, t, cond=c)
    assert not torch.allclose(u, model(z, r, t, cond=c + 1))
    assert not torch.allclose(u, model(z, torch.zeros_like(r), t, cond=c))  # t - r is an input
    assert not torch.allclose(u, model(z, r + 0.1, t + 0.1, cond=c))  # so is t


@pytest.mark.parametrize("patch", [1, 4])
def test_math_and_fast_attention_agree(patch):
    model = wake(tiny(patch=patch)).eval()
    z, r, t, c = inputs()
    with torch.no_grad():
        model.attention_backend = "math"
        u_math = model(z, r, t, cond=c)
        model.attention_backend = "fast"
        u_fast = model(z, r, t, cond=c)
    assert u_math.abs().max() > 0.1
    torch.testing.assert_close(u_fast, u_math, rtol=1e-5, atol=1e-5)


def test_paths_agree_in_training_with_dropout():
    """Dropout sits outside the attention kernel, so both paths draw the same random masks."""
    model = wake(tiny(dropout=0.2)).train()
    z, r, t, c = inputs()
    outs = []
    for backend in ("math", "fast"):
        model.attention_backend = backend
        torch.manual_seed(7)
        outs.append(model(z, r, t, cond=c))
    torch.testing.assert_close(outs[0], outs[1], rtol=1e-5, atol=1e-5)


def test_fast_path_uses_sdpa_and_jvp_falls_back(monkeypatch):
    calls = []
    real = F.scaled_dot_product_attention

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(transformer_mod.F, "scaled_dot_product_attention", counting)
    model = wake(tiny(attention="fast"))
    z, r, t, c = inputs()
    model(z, r, t, cond=c)
    assert len(calls) == 2  # one per block
    calls.clear()

    def fn(z_, r_, t_):
        return model(z_, r_, t_, cond=c)

    tangents = (torch.randn_like(z), torch.zeros_like(r), torch.ones_like(t))
    _, jvp_fast = torch.func.jvp(fn, (z, r, t), tangents)  # SDPA alone raises under forward AD
    assert calls == []  # the guard routed every block through the math path
    with model.jvp_safe():
        assert model.attention_backend == "math"
        _, jvp_math = torch.func.jvp(fn, (z, r, t), tangents)
    assert model.attention_backend == "fast"  # restored
    torch.testing.assert_close(jvp_fast, jvp_math)


def test_jvp_matches_central_finite_difference_float64():
    model = wake(tiny()).double().eval()
    z, r, t, c = inputs(dtype=torch.float64)
    v = torch.randn_like(z)

    def fn(z_, r_, t_):
        return model(z_, r_, t_, cond=c)

    with torch.no_grad():
        _, jvp = torch.func.jvp(fn, (z, r, t), (v, torch.zeros_like(r), torch.ones_like(t)))
        eps = 1e-6
        fd = (fn(z + eps * v, r, t + eps) - fn(z - eps * v, r, t - eps)) / (2 * eps)
    assert jvp.abs().max() > 1e-2
    torch.testing.assert_close(jvp, fd, rtol=1e-6, atol=1e-7)


def test_gradients_reach_every_parameter_through_u_and_through_jvp():
    model = wake(tiny())
    z, r, t, c = inputs()
    params = dict(model.named_parameters())

    grads_u = torch.autograd.grad(model(z, r, t, cond=c).square().sum(), list(params.values()))
    for (name, _), g in zip(params.items(), grads_u, strict=True):
        assert g.abs().sum() > 0, f"no gradient through u for {name}"

    def fn(z_, r_, t_):
        return model(z_, r_, t_, cond=c)

    _, dudt = torch.func.jvp(fn, (z, r, t), (torch.randn_like(z), torch.zeros_like(r), torch.ones_like(t)))
    grads_j = torch.autograd.grad(
        dudt.square().sum(), list(params.values()), allow_unused=True
    )  # double backward
    for (name, _), g in zip(params.items(), grads_j, strict=True):
        if name == "out.bias":  # a constant offset of u: du/dt cannot depend on it
            assert g is None or not g.any()
            continue
        assert torch.isfinite(g).all() and g.abs().sum() > 0, f"no gradient through du/dt for {name}"


def test_deterministic_given_seed():
    z, r, t, c = inputs()
    a, b, other = tiny(seed=3), tiny(seed=3), tiny(seed=4)
    for (na, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(pa, pb), na
    assert not torch.equal(a.pos, other.pos)
    wake(a), wake(b)
    assert torch.equal(a(z, r, t, cond=c), b(z, r, t, cond=c))


@pytest.mark.parametrize("backend", ["math", "fast"])
def test_core_objective_exact_jvp_trains(backend):
    model = wake(tiny(attention=backend))
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, H, D, generator=g)
    c = torch.randn(8, C, generator=g)
    objective = ModularMeanFlow(ObjectiveConfig(variant="mmf", jvp="exact"))
    loss, stats = objective.loss(
        model, x, step=10, generator=torch.Generator().manual_seed(0), cond={"cond": c}
    )
    loss.backward()
    assert torch.isfinite(loss) and stats["lambda"] > 0  # λ > 0: gradient goes through du/dt
    grads = [p.grad for p in model.parameters()]
    assert all(gr is not None and torch.isfinite(gr).all() for gr in grads)
    assert sum(gr.abs().sum() for gr in grads) > 0


def test_time_embedding_is_generic():
    emb = TimeEmbedding(24)
    t = torch.rand(7)
    out = emb(torch.zeros(7), t)
    assert out.shape == (7, 24)
    assert not torch.allclose(out, emb(t, t))  # r enters through t - r
    with pytest.raises(ValueError):
        emb(torch.zeros(7, 1), t)
    feats = fourier_features(torch.tensor([0.0, 0.5], dtype=torch.float64), 8)
    assert feats.dtype == torch.float64 and feats.shape == (2, 8)
    torch.testing.assert_close(feats[0], torch.tensor([1.0] * 4 + [0.0] * 4, dtype=torch.float64))


def test_presets_have_the_advertised_sizes():
    base = build_transformer(preset_config("base", horizon=64, dim_in=6, cond_dim=8))
    cpu = build_transformer(preset_config("cpu", horizon=64, dim_in=6, cond_dim=8))
    assert 4.5e6 < count_parameters(base) < 5.5e6
    assert 1.0e6 < count_parameters(cpu) < 1.5e6


def test_model_is_smooth_enough_for_the_finite_difference_jvp():
    """The default time embedding keeps fd-central (ε = 1e-2, fp32) close to the exact du/dt."""
    model = wake(tiny(), seed=2).eval()
    z, r, t, c = inputs(seed=3)
    v = torch.randn_like(z)

    def fn(z_, r_, t_):
        return model(z_, r_, t_, cond=c)

    exact = get_jvp_backend("exact")(fn, z, r, t, v)
    fd = get_jvp_backend("fd-central")(fn, z, r, t, v, eps=1e-2)
    assert ((fd - exact).norm() / exact.norm()) < 5e-3  # max_freq 64 gives ~4e-2 here
