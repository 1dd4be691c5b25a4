"""The from-scratch batch norm and dropout against PyTorch's own layers."""

import functools
import re

import pytest
import torch
from torch import nn

from mla_course.layers import (
    BatchNorm1d,
    Dropout,
    adapt_batchnorm,
    dropout,
    mc_dropout_predict,
)
from mla_course.models import MLP


def _pair(**kwargs):
    ours, ref = BatchNorm1d(5, **kwargs), nn.BatchNorm1d(5, **kwargs)
    if ours.affine:  # non-trivial gamma and beta, the same in both
        with torch.no_grad():
            ours.weight.uniform_(0.5, 2.0)
            ours.bias.normal_()
            ref.weight.copy_(ours.weight)
            ref.bias.copy_(ours.bias)
    return ours, ref


@pytest.mark.parametrize(
    "kwargs", [{}, {"momentum": 0.3, "eps": 1e-3}, {"affine": False}, {"momentum": None}]
)
def test_batchnorm_matches_torch_over_several_steps(kwargs):
    torch.manual_seed(0)
    ours, ref = _pair(**kwargs)
    for step in range(4):
        x = (torch.randn(16, 5) * (step + 1) + step).requires_grad_()
        x_ref = x.detach().clone().requires_grad_()
        y, y_ref = ours(x), ref(x_ref)
        torch.testing.assert_close(y, y_ref)
        g = torch.randn_like(y)  # a random upstream gradient
        y.backward(g)
        y_ref.backward(g)
        torch.testing.assert_close(x.grad, x_ref.grad)
        if ours.affine:
            torch.testing.assert_close(ours.weight.grad, ref.weight.grad)
            torch.testing.assert_close(ours.bias.grad, ref.bias.grad)
        torch.testing.assert_close(ours.running_mean, ref.running_mean)
        torch.testing.assert_close(ours.running_var, ref.running_var)
        assert ours.num_batches_tracked.item() == ref.num_batches_tracked.item() == step + 1
    ours.eval(), ref.eval()
    x = torch.randn(7, 5) * 3
    torch.testing.assert_close(ours(x), ref(x))


def test_batchnorm_three_dims_and_no_running_stats():
    torch.manual_seed(1)
    ours, ref = _pair()
    x = torch.randn(4, 5, 6)
    torch.testing.assert_close(ours(x), ref(x))
    torch.testing.assert_close(ours.running_var, ref.running_var)
    ours = BatchNorm1d(5, track_running_stats=False).eval()
    ref = nn.BatchNorm1d(5, track_running_stats=False).eval()
    torch.testing.assert_close(ours(x), ref(x))


def test_batchnorm_state_dict_loads_into_torch():
    ours = BatchNorm1d(5)
    ours(torch.randn(8, 5))
    ref = nn.BatchNorm1d(5)
    ref.load_state_dict(ours.state_dict())
    torch.testing.assert_close(ref.running_mean, ours.running_mean)


def test_batchnorm_in_mlp_equals_torch():
    torch.manual_seed(0)
    ours = MLP((20, 8, 3), batch_norm="before", norm_layer=BatchNorm1d)
    ref = MLP((20, 8, 3), batch_norm="before")
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(10, 20)
    torch.testing.assert_close(ours(x), ref(x))
    ours.eval(), ref.eval()
    torch.testing.assert_close(ours(x), ref(x))


def test_batchnorm_bad_arguments():
    with pytest.raises(ValueError, match="num_features=0"):
        BatchNorm1d(0)
    with pytest.raises(ValueError, match="eps=-1"):
        BatchNorm1d(3, eps=-1)
    with pytest.raises(ValueError, match=r"momentum=1\.5"):
        BatchNorm1d(3, momentum=1.5)
    with pytest.raises(ValueError, match=r"expected \(batch, 3\)"):
        BatchNorm1d(3)(torch.randn(4, 2))
    with pytest.raises(ValueError, match="more than one value"):
        BatchNorm1d(3)(torch.randn(1, 3))


@pytest.mark.parametrize("norm_layer", [nn.BatchNorm1d, BatchNorm1d])
def test_adapt_batchnorm_measures_the_new_statistics(norm_layer):
    torch.manual_seed(0)
    model = MLP((6, 4, 2), batch_norm="before", dropout=0.5, norm_layer=norm_layer)
    X = torch.randn(50, 6) * 2 + 3  # shifted data
    adapt_batchnorm(model, X)
    pre = model.linears[0](X).detach()  # the inputs of the batch norm
    bn = model.net[2]
    torch.testing.assert_close(bn.running_mean, pre.mean(0))
    torch.testing.assert_close(bn.running_var, pre.var(0))  # unbiased, as torch keeps it
    assert not model.training and bn.momentum == 0.1
    # In batches, the statistics are averaged: the mean is exact for equal batches.
    adapt_batchnorm(model, X, batch_size=10)
    torch.testing.assert_close(bn.running_mean, pre.mean(0))
    with pytest.raises(ValueError, match="no batch norm"):
        adapt_batchnorm(MLP((6, 2)), X)


def test_dropout_statistics_match_torch():
    torch.manual_seed(0)
    p, x = 0.3, torch.rand(200_000) + 1.0
    ours, ref = Dropout(p), nn.Dropout(p)
    y, y_ref = ours(x), ref(x)
    for out in (y, y_ref):
        assert abs((out == 0).float().mean().item() - p) < 0.01  # share zeroed ~ p
        assert abs(out.mean().item() - x.mean().item()) < 0.01  # mean preserved
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / (1 - p))  # survivors scaled by 1/(1-p)
    kept_ref = y_ref != 0
    torch.testing.assert_close(y_ref[kept_ref], x[kept_ref] / (1 - p))
    ours.eval()
    assert torch.equal(ours(x), x)  # identity in evaluation


def test_dropout_non_inverted_and_generator():
    x = torch.ones(100_000)
    layer = Dropout(0.25, inverted=False, generator=torch.Generator().manual_seed(0))
    y = layer(x)
    assert set(y.unique().tolist()) == {0.0, 1.0}  # survivors unscaled
    layer.eval()
    torch.testing.assert_close(layer(x), x * 0.75)  # scaled by the keep probability at test
    a = Dropout(0.5, generator=torch.Generator().manual_seed(3))(x)
    b = Dropout(0.5, generator=torch.Generator().manual_seed(3))(x)
    assert torch.equal(a, b)
    with pytest.raises(ValueError, match="p=1"):
        Dropout(1)
    with pytest.raises(ValueError, match=r"p=-0\.1"):
        Dropout(-0.1)


def test_dropout_in_mlp_and_mc_average():
    torch.manual_seed(0)
    model = MLP(
        (10, 32, 3),
        activation="relu",
        dropout=0.5,
        dropout_layer=functools.partial(Dropout, inverted=True),
    )
    x = torch.randn(5, 10)
    model.train()
    assert not torch.equal(model(x), model(x))  # random masks
    probs = mc_dropout_predict(model, x, n_samples=200)
    assert probs.shape == (5, 3)
    torch.testing.assert_close(probs.sum(1), torch.ones(5))
    assert not model.training
    # The one-pass rule (inverted dropout at test) approximates the MC average.
    one_pass = torch.softmax(model(x), 1)
    assert (probs - one_pass).abs().max() < 0.2
    with pytest.raises(ValueError, match="n_samples=0"):
        mc_dropout_predict(model, x, n_samples=0)


def test_mc_dropout_works_with_torch_dropout_and_batchnorm():
    torch.manual_seed(0)
    model = MLP((10, 16, 3), batch_norm="before", dropout=0.2)  # torch's layers
    x = torch.randn(8, 10)
    running = model.net[2].running_mean.clone()
    probs = mc_dropout_predict(model, x, n_samples=5)
    assert probs.shape == (8, 3)
    assert torch.equal(model.net[2].running_mean, running)  # batch norm stayed in eval


def test_functional_dropout_of_one_gives_zeros_as_torch_does():
    x = torch.randn(50, 8)
    for inverted in (True, False):
        out = dropout(x, 1.0, training=True, inverted=inverted)
        assert torch.equal(out, torch.zeros_like(x))  # not NaN
    assert torch.equal(nn.functional.dropout(x, 1.0, training=True), torch.zeros_like(x))
    assert torch.equal(dropout(x, 1.0, training=False), x)


@pytest.mark.parametrize("p", [1.5, -0.5, float("nan"), True, "0.5"])
def test_functional_dropout_refuses_a_p_outside_0_1(p):
    with pytest.raises(ValueError, match=re.escape(f"p={p!r}: expected a probability in [0, 1]")):
        dropout(torch.ones(3), p, training=True)
