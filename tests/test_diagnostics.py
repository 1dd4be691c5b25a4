"""Per-layer statistics against the same quantities computed by hand with autograd."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mla_course import diagnostics as dg
from mla_course.models import MLP


def _net(activation="sigmoid", sizes=(6, 5, 4, 3), seed=0):
    torch.manual_seed(seed)
    return MLP(list(sizes), activation)


def _batch(n=8, d=6, classes=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=g), torch.randint(classes, (n,), generator=g)


def _by_hand(model, x, y, act=torch.sigmoid):
    """Forward pass written out layer by layer; z.retain_grad() gives dL/dz."""
    zs, acts, h = [], [], x
    linears = model.linears
    for i, layer in enumerate(linears):
        z = h @ layer.weight.T + layer.bias  # (batch, units)
        z.retain_grad()
        zs.append(z)
        if i < len(linears) - 1:
            h = act(z)
            acts.append(h)
    model.zero_grad()
    F.cross_entropy(zs[-1], y).backward()
    return zs, acts


def _no_hooks(model):
    for m in model.modules():
        assert not m._forward_hooks and not m._forward_pre_hooks and not m._backward_hooks
    for p in model.parameters():
        assert not p._backward_hooks


def test_gradient_stats_match_autograd_by_hand():
    model, (x, y) = _net(), _batch()
    stats = dg.gradient_stats(model, x, y)
    zs, _ = _by_hand(model, x, y)
    for i, layer in enumerate(model.linears):
        assert stats["weight_grad_norm"][i] == pytest.approx(layer.weight.grad.norm().item())
        assert stats["bias_grad_norm"][i] == pytest.approx(layer.bias.grad.norm().item())
        assert stats["preact_grad_var"][i] == pytest.approx(zs[i].grad.var(unbiased=False).item())
    assert stats.names == ["hidden 1", "hidden 2", "output"]


def test_trace_leaves_grad_untouched_and_removes_hooks():
    model, (x, y) = _net(), _batch()
    traces = dg.trace(model, x, y)
    assert all(p.grad is None for p in model.parameters())
    _no_hooks(model)
    assert traces[-1].a is None and traces[0].a.shape == (8, 5)
    torch.testing.assert_close(traces[0].a, torch.sigmoid(traces[0].z))


def test_activation_stats_match_by_hand():
    model, (x, y) = _net("tanh"), _batch()
    for layer in model.linears:
        nn.init.normal_(layer.weight, std=3.0)  # saturate some tanh units
    stats = dg.activation_stats(model, x)
    _, acts = _by_hand(model, x, y, torch.tanh)
    for i, a in enumerate(acts):
        assert stats["act_mean"][i] == pytest.approx(a.mean().item())
        assert stats["act_std"][i] == pytest.approx(a.std(unbiased=False).item())
        assert stats["saturated"][i] == pytest.approx((a.abs() > 0.99).float().mean().item())
    assert np.nanmax(stats["saturated"]) > 0
    assert np.isnan(stats["dead"][:2]).all() and np.isnan(stats["act_mean"][2])


def test_sigmoid_saturation_share():
    model, (x, _) = _net("sigmoid"), _batch()
    a = torch.sigmoid(model.linears[0](x))
    expected = ((a < 0.05) | (a > 0.95)).float().mean().item()
    assert dg.activation_stats(model, x, saturation=0.95)["saturated"][0] == pytest.approx(expected)


def test_dead_relu_units():
    model, (x, _) = _net("relu"), _batch()
    with torch.no_grad():
        model.linears[0].bias[:2] = -100.0  # units 0 and 1 of 5 never fire
        model.linears[0].bias[2:] = 100.0  # the others always do
    assert dg.activation_stats(model, x)["dead"][0] == pytest.approx(2 / 5)


def test_learning_speed_is_the_norm_of_the_bias_gradient():
    model, (x, y) = _net(), _batch()
    speed = dg.learning_speed(model, x, y)
    _by_hand(model, x, y)
    expected = [layer.bias.grad.norm().item() for layer in model.linears]
    np.testing.assert_allclose(speed, expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m: dg.layer_stats(m, torch.zeros(2, 6), saturation=1.5), "saturation=1.5"),
        (lambda m: dg.trace(nn.Sequential(nn.ReLU()), torch.zeros(2, 6)), r"no nn\.Linear"),
    ],
)
def test_bad_arguments_raise_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call(_net())
