"""Forward-mode + backward correctness of the networks' building blocks (see models/layers.py)."""

import pytest
import torch
from torch import nn

from mmftraj.models.layers import LayerNorm
from mmftraj.models.mlp import MLPConfig, TimeMLP
from mmftraj.models.transformer import TransformerConfig, build_transformer


def _jvp_param_grad(fn, params, inputs, tangents, weight, reference: bool):
    """Gradient of <weight, JVP> w.r.t. params: forward-mode (torch.func) or double-backward reference."""
    if reference:
        dudt = torch.autograd.functional.jvp(fn, inputs, tangents, create_graph=True)[1]
    else:
        dudt = torch.func.jvp(fn, inputs, tangents)[1]
    grads = torch.autograd.grad((dudt * weight).sum(), params, allow_unused=True)
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1)
                      for g, p in zip(grads, params, strict=True)])


def test_composite_layernorm_matches_torch_values():
    x = torch.randn(4, 7, 16)
    ours, ref = LayerNorm(16), nn.LayerNorm(16)
    with torch.no_grad():
        ours.weight.normal_(), ours.bias.normal_()
        ref.weight.copy_(ours.weight), ref.bias.copy_(ours.bias)
    assert torch.allclose(ours(x), ref(x), atol=1e-5)


@pytest.mark.parametrize("net", ["layernorm", "mlp", "transformer"])
def test_gradient_through_exact_jvp_matches_double_backward(net):
    torch.manual_seed(0)
    if net == "layernorm":
        model = nn.Sequential(nn.Linear(6, 6), LayerNorm(6), nn.Linear(6, 6)).double()
        inputs = (torch.randn(8, 6, dtype=torch.float64),)
        fn = model
    elif net == "mlp":
        model = TimeMLP(MLPConfig(dim=3, hidden=16, depth=2, time_dim=8, freq_dim=4)).double()
        inputs = (torch.randn(8, 3, dtype=torch.float64), torch.rand(8, dtype=torch.float64) * 0.3,
                  0.4 + torch.rand(8, dtype=torch.float64) * 0.5)
        fn = model
    else:
        model = build_transformer(TransformerConfig(horizon=8, dim_in=3, width=16, depth=1, heads=2)).double()
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.1 * torch.randn_like(p))
        model.attention_backend = "math"
        inputs = (torch.randn(4, 8, 3, dtype=torch.float64), torch.rand(4, dtype=torch.float64) * 0.3,
                  0.4 + torch.rand(4, dtype=torch.float64) * 0.5)
        fn = model
    tangents = tuple(torch.randn_like(inputs[0]) if i == 0 else torch.ones_like(a) if i == 2 else torch.zeros_like(a)
                     for i, a in enumerate(inputs))
    params = list(model.parameters())
    weight = torch.randn_like(fn(*inputs))
    ours = _jvp_param_grad(fn, params, inputs, tangents, weight, reference=False)
    ref = _jvp_param_grad(fn, params, inputs, tangents, weight, reference=True)
    assert torch.allclose(ours, ref, rtol=1e-8, atol=1e-10)


@pytest.mark.xfail(strict=True, reason="torch's layer_norm derivative through forward-mode AD is wrong "
                   "(upstream: pytorch/pytorch#196700 and #175754, wrong higher-order layer_norm derivatives)")
def test_torch_layernorm_forward_ad_gradient_is_right():
    """Why mmftraj's own LayerNorm exists. Strict: when torch fixes its formula this XPASSes and
    fails, telling us the workaround can go."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 6), nn.LayerNorm(6), nn.Linear(6, 6)).double()
    x = torch.randn(8, 6, dtype=torch.float64)
    v, w = torch.randn_like(x), torch.randn_like(x)
    params = list(model.parameters())
    ours = _jvp_param_grad(model, params, (x,), (v,), w, reference=False)
    ref = _jvp_param_grad(model, params, (x,), (v,), w, reference=True)
    assert (ours - ref).norm() / ref.norm() < 1e-8
