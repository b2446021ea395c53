"""DDPM++-style U-Net: shapes, size, attention paths, JVP backends (with dropout), masks."""

from __future__ import annotations

import pytest
import torch
from mmf_reference import reference_mmf_loss

from mmftraj.core import ModularMeanFlow, ObjectiveConfig, TimeSampler, get_jvp_backend
from mmftraj.models import UNet, UNetConfig, build_unet, unet_config


def tiny(seed: int = 0, **kw) -> UNet:
    torch.manual_seed(seed)
    cfg = dict(image_size=8, in_channels=1)
    cfg.update(kw)
    model = build_unet(unet_config("tiny", **cfg))
    # Wake the near-zero output convolutions so every path carries signal.
    g = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("weight") and p.abs().max() < 1e-3:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return model


def inputs(b=4, c=1, s=8, seed=0, dtype=torch.float32):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(b, c, s, s, generator=g, dtype=dtype)
    t = torch.rand(b, generator=g, dtype=dtype) * 0.8 + 0.1
    r = t * torch.rand(b, generator=g, dtype=dtype)
    return z, r, t


def loss_and_grads(model, compute):
    """(loss, gradient of every parameter), zeros where the loss does not reach a parameter."""
    loss = compute()
    params = list(model.parameters())
    grads = torch.autograd.grad(loss, params, allow_unused=True)
    return loss.detach(), [torch.zeros_like(p) if d is None else d for p, d in zip(params, grads, strict=True)]


def test_shapes_and_bad_inputs():
    z, r, t = inputs()
    assert tiny()(z, r, t).shape == z.shape
    m3 = tiny(in_channels=3, image_size=16, attn_resolutions=[8, 4], aug_dim=8)
    z3, r3, t3 = inputs(c=3, s=16)
    assert m3(z3, r3, t3, aug=torch.randn(4, 8)).shape == z3.shape
    assert torch.equal(m3(z3, r3, t3), m3(z3, r3, t3, aug=torch.zeros(4, 8)))  # no labels = zero labels
    with pytest.raises(ValueError, match="expected z"):
        tiny()(z[:, :, :4], r, t)
    with pytest.raises(ValueError, match="aug_dim=0"):
        tiny()(z, r, t, aug=torch.zeros(4, 8))
    with pytest.raises(ValueError, match="divisible"):
        build_unet(UNetConfig(image_size=10, channel_mult=[1, 1, 1]))


def test_default_cifar_network_is_ddpmpp_sized():
    model = build_unet(UNetConfig())
    n = sum(p.numel() for p in model.parameters())
    assert 54e6 < n < 57e6  # the published DDPM++ CIFAR-10 network has ~55.7M
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in model.modules())


def test_fast_attention_equals_math():
    model = tiny(attention="fast").eval()
    z, r, t = inputs()
    fast = model(z, r, t)
    with model.jvp_safe():
        assert model.attention_backend == "math"
        slow = model(z, r, t)
    assert model.attention_backend == "fast"
    torch.testing.assert_close(fast, slow, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_finite_difference_jvp_matches_exact(dropout):
    """In float64 central differences agree with forward-mode AD to O(ε²) — with dropout on in
    train mode too, because the masks depend on r (untouched by the tangent), not on the call."""
    model = tiny(dropout=dropout, attention="fast").double().train()
    model.reseed_dropout(torch.Generator().manual_seed(3))
    z, r, t = inputs(dtype=torch.float64)
    v = torch.randn_like(z)

    def fn(z_, r_, t_):
        return model(z_, r_, t_)

    exact = get_jvp_backend("exact")(fn, z, r, t, v)
    central = get_jvp_backend("fd-central")(fn, z, r, t, v, eps=1e-4)
    assert exact.abs().max() > 1e-2
    torch.testing.assert_close(central, exact, atol=1e-6 * exact.abs().max().item(), rtol=1e-5)


def test_dropout_masks_are_per_sample_and_refreshable():
    model = tiny(dropout=0.5).train()
    z, r, t = inputs()
    full = model(z, r, t)
    assert torch.equal(model(z, r, t), full)  # same r, same bank: same masks
    torch.testing.assert_close(model(z[2:], r[2:], t[2:]), full[2:])  # independent of the other rows
    model.reseed_dropout(torch.Generator().manual_seed(7))
    assert not torch.allclose(model(z, r, t), full)  # a new bank gives new masks
    model.eval()
    assert torch.equal(model(z, r, t), model(z, r, t))
    # the mask keeps about 1 - p of the activations
    drop = model.enc[0].dropout.train()
    x = torch.ones(64, 16, 8, 8)
    keys = torch.randint(0, 2**31, (64,))
    kept = (drop(x, keys) != 0).float().mean().item()
    assert 0.45 < kept < 0.55
    # channels_last activations get the same masks (gathered in NHWC order)
    y = torch.randn(4, 16, 8, 8)
    nhwc = drop(y.contiguous(memory_format=torch.channels_last), keys[:4])
    assert nhwc.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(nhwc, drop(y, keys[:4]))


def test_exact_mmf_loss_backpropagates_through_unet():
    model = tiny(dropout=0.1)
    z, _, _ = inputs(b=6)
    for jvp in ("exact", "fd-central"):
        objective = ModularMeanFlow(ObjectiveConfig(variant="mmf-full", jvp=jvp))
        model.zero_grad()
        loss, _ = objective.loss(model, z, generator=torch.Generator().manual_seed(0))
        loss.backward()
        assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_bf16_autocast_training_step_runs():
    """Under bf16 autocast the U-Net answers in its input's dtype, so the objective's float32 du/dt
    mixes with u (this crashed in index_put before the cast)."""
    model = tiny(in_channels=3, image_size=8, dropout=0.1)
    z, _, _ = inputs(b=4, c=3)
    for variant in ("meanflow", "mmf-full"):
        objective = ModularMeanFlow(ObjectiveConfig(variant=variant, equal_fraction=0.25))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert model(z, torch.zeros(4), torch.ones(4)).dtype == torch.float32
            loss, _ = objective.loss(model, z, generator=torch.Generator().manual_seed(0))
        loss.backward()
        assert torch.isfinite(loss)


def test_channels_last_gives_the_same_function():
    model = tiny(dropout=0.2).train()
    z, r, t = inputs()
    ref = model(z, r, t)
    model.use_channels_last()
    torch.testing.assert_close(model(z, r, t), ref, atol=1e-5, rtol=1e-5)


def test_tangent_forward_is_the_exact_jvp():
    """model(..., tangent=(dz, dr, dt)) gives forward-mode AD's du (float64, dropout on in train
    mode, augmentation labels, attention) and the plain forward's u, for any tangent."""
    model = tiny(dropout=0.3, aug_dim=3, attention="fast").double().train()
    model.reseed_dropout(torch.Generator().manual_seed(3))
    z, r, t = inputs(dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    dz, dr, dt = torch.randn(z.shape, generator=g, dtype=z.dtype), torch.rand(4, generator=g, dtype=z.dtype), \
        torch.rand(4, generator=g, dtype=z.dtype)
    aug = torch.randn(4, 3, generator=g, dtype=z.dtype)
    u, du = model(z, r, t, aug=aug, tangent=(dz, dr, dt))
    torch.testing.assert_close(u, model(z, r, t, aug=aug), rtol=1e-10, atol=1e-12)
    with model.jvp_safe():
        ref = torch.func.jvp(lambda a, b, c: model(a, b, c, aug=aug), (z, r, t), (dz, dr, dt))[1]
    assert ref.abs().max() > 1e-2
    torch.testing.assert_close(du, ref, rtol=1e-9, atol=1e-11)
    # the objective's direction (v, 0, 1) through the `dual` backend
    def fn(z_, r_, t_, **tangent):
        return model(z_, r_, t_, aug=aug, **tangent)

    torch.testing.assert_close(get_jvp_backend("dual")(fn, z, r, t, dz), get_jvp_backend("exact")(fn, z, r, t, dz),
                               rtol=1e-9, atol=1e-11)
    model.use_channels_last()
    torch.testing.assert_close(model(z, r, t, aug=aug, tangent=(dz, dr, dt))[1], ref, rtol=1e-9, atol=1e-11)


def test_gradients_through_the_tangent_forward_match_finite_differences():
    """λ > 0 back-propagates through du/dt: the dual and exact backends' parameter gradients equal
    those through float64 central differences (an independent route: two ordinary forwards)."""
    model = tiny(dropout=0.2).double().train()
    z, r, t = inputs(dtype=torch.float64)
    v = torch.randn(z.shape, generator=torch.Generator().manual_seed(2), dtype=z.dtype)
    weights = torch.randn(z.shape, generator=torch.Generator().manual_seed(4), dtype=z.dtype)

    def fn(z_, r_, t_, **tangent):
        return model(z_, r_, t_, **tangent)

    def grads(backend, **kw):
        model.zero_grad()
        (get_jvp_backend(backend)(fn, z, r, t, v, create_graph=True, **kw) * weights).sum().backward()
        return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}

    central = grads("fd-central", eps=1e-5)
    for backend in ("dual", "exact"):  # exact: torch's fused GroupNorm under forward mode, too
        found = grads(backend)
        assert len(found) > 20 and set(found) <= set(central)
        for name, c in central.items():  # the output bias does not move du: no gradient, or a zero one
            d = found.get(name, torch.zeros_like(c))
            torch.testing.assert_close(d, c, rtol=1e-5, atol=1e-6 * c.abs().max().item() + 1e-9,
                                       msg=f"{backend} {name}")


def test_dual_backend_in_the_objective_and_its_error():
    """At λ > 0 the objective takes u on the r < t rows from the dual (or exact) pass itself; loss
    and gradients equal MMF written out with one forward-mode pass (float64, dropout on)."""
    model = tiny(dropout=0.1).double().train()
    model.reseed_dropout(torch.Generator().manual_seed(3))
    x, _, _ = inputs(b=6, dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(x.shape, generator=g, dtype=x.dtype)
    r, t = (a.double() for a in TimeSampler("uniform", equal_fraction=0.5).sample(6, g))
    with model.jvp_safe():
        ref_loss, ref_grads = loss_and_grads(model, lambda: reference_mmf_loss(model, x, noise, r, t, 0.5,
                                                                               tangent="model"))
    for jvp in ("exact", "dual"):
        objective = ModularMeanFlow(ObjectiveConfig(variant="mmf", jvp=jvp))
        loss, grads = loss_and_grads(model, lambda o=objective: o.loss(model, x, noise=noise, r=r, t=t, lam=0.5)[0])
        torch.testing.assert_close(loss, ref_loss, rtol=1e-9, atol=0, msg=jvp)
        torch.testing.assert_close(torch.cat([a.reshape(-1) for a in grads]),
                                   torch.cat([a.reshape(-1) for a in ref_grads]), rtol=1e-7, atol=1e-10, msg=jvp)
    from mmftraj.errors import UserError
    from mmftraj.models.mlp import MLPConfig, TimeMLP

    with pytest.raises(UserError, match="tangent forward"):
        ModularMeanFlow(ObjectiveConfig(jvp="dual")).loss(TimeMLP(MLPConfig(dim=2, hidden=8, depth=1)),
                                                         torch.randn(4, 2))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_compiled_block_back_propagates_its_tangent_like_eager():
    """torch.compile of a residual block with dropout, value and tangent: the gradients of the
    tangent match eager. (Inductor once got them wrong for a mean-based group norm.)"""
    import copy

    model = tiny(dropout=0.2).train()
    model.reseed_dropout(torch.Generator().manual_seed(1))
    eager = model.enc[0]
    compiled = copy.deepcopy(eager)
    compiled.compile(dynamic=False)
    g = torch.Generator().manual_seed(0)
    x, dx = torch.randn(2, 4, 16, 8, 8, generator=g)
    emb, demb = torch.randn(2, 4, 64, generator=g)
    keys = torch.randint(0, 2**31, (4,), generator=g)
    grads = []
    for block in (compiled, eager):
        dy = block(x, emb, keys, dx, demb)[1]
        grads.append(torch.autograd.grad((dy * dy).sum(), list(block.parameters()), allow_unused=True))
    for (name, p), a, b in zip(eager.named_parameters(), *grads, strict=True):
        a = torch.zeros_like(p) if a is None else a
        b = torch.zeros_like(p) if b is None else b
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item() + 1e-7, msg=name)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA GPU"))])
def test_compiled_mmf_step_with_the_dual_backend_matches_eager(device, monkeypatch):
    """The λ > 0 step as the trainer compiles it (per block): dual du/dt with u shared from its
    pass, dropout and attention. The loss and the gradient through du/dt (λ = 1 minus λ = 0)
    match eager. (With the old mean-based group norm, that gradient is wrong by up to 10 %.)"""
    import copy

    from mmftraj.runtime import compile_model

    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)  # true float32 on both sides
    eager = tiny(dropout=0.2, attention="fast").train()
    eager.reseed_dropout(torch.Generator().manual_seed(1))
    eager.to(device)
    compiled = compile_model(copy.deepcopy(eager), "blocks")
    x, _, _ = inputs(b=8)
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(x.shape, generator=g)
    r, t = TimeSampler("logit_normal", equal_fraction=0.25).sample(8, g)
    x, noise, r, t = (a.to(device) for a in (x, noise, r, t))
    objective = ModularMeanFlow(ObjectiveConfig(variant="mmf", jvp="dual"))
    results = {}
    for name, model in (("compiled", compiled), ("eager", eager)):
        loss, at_one = loss_and_grads(model, lambda m=model: objective.loss(m, x, noise=noise, r=r, t=t, lam=1.0)[0])
        _, at_zero = loss_and_grads(model, lambda m=model: objective.loss(m, x, noise=noise, r=r, t=t, lam=0.0)[0])
        results[name] = loss, [a - b for a, b in zip(at_one, at_zero, strict=True)]
    torch.testing.assert_close(results["compiled"][0], results["eager"][0], rtol=1e-5, atol=0)
    scale = max(b.abs().max().item() for b in results["eager"][1])  # parameters du/dt does not see: ~0
    pairs = zip(eager.named_parameters(), results["compiled"][1], results["eager"][1], strict=True)
    for (name, _), a, b in pairs:
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5 * scale, msg=name)
