"""Identities and constructions of the chapter 3 pages (regularisation), as tests.

Each was a check on a gallery page; it cannot come out otherwise (an algebraic
identity, a construction, or a Monte-Carlo estimate of a known value), so it is
no evidence for the book's claims and lives here. Each test re-creates the
page's small computation with the package's public names.
"""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from mla_course.layers import BatchNorm1d, Dropout, adapt_batchnorm
from mla_course.models import MLP
from mla_course.penalties import l1_penalty, l2_penalty


# ----------------------------------------------------------------- plot_11_batch_norm
def test_our_batch_norm_is_torchs_in_both_modes():
    torch.manual_seed(0)
    ours, ref = BatchNorm1d(100), nn.BatchNorm1d(100)
    x = torch.randn(60, 100) * 3 + 1  # (batch, units)
    for mode in ("train", "eval"):
        getattr(ours, mode)(), getattr(ref, mode)()
        torch.testing.assert_close(ours(x), ref(x), atol=1e-5, rtol=0)
    torch.testing.assert_close(ours.running_mean, ref.running_mean)
    torch.testing.assert_close(ours.running_var, ref.running_var)


def test_gamma_sigma_and_beta_mu_make_the_layer_the_identity():
    torch.manual_seed(0)
    bn = BatchNorm1d(100).eval()
    bn.running_mean.normal_(2.0, 1.0), bn.running_var.uniform_(0.5, 4.0)
    with torch.no_grad():
        bn.weight.copy_(torch.sqrt(bn.running_var + bn.eps))
        bn.bias.copy_(bn.running_mean)
    x = torch.randn(60, 100) * 3 + 1
    torch.testing.assert_close(bn(x), x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("a", [-5.0, 0.0, 100.0])
def test_a_batch_a_a1_a2_becomes_the_same_three_values(a):
    out = BatchNorm1d(1, affine=False)(torch.tensor([[a], [a + 1], [a + 2]]))
    expected = torch.tensor([[-(1.5**0.5)], [0.0], [1.5**0.5]])
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=0)


# --------------------------------------------------------- plot_11b_batch_norm_limits
def test_a_batch_of_two_becomes_minus_one_and_plus_one():
    pair = torch.tensor([[0.1, 5.0, -2.0], [0.2, 90.0, 7.0]])  # (batch, units)
    out = BatchNorm1d(3, affine=False)(pair)
    assert (out.abs() - 1).abs().max() < 0.01  # 0.1 apart: eps shows
    torch.testing.assert_close(out.sum(0), torch.zeros(3), atol=1e-6, rtol=0)


@pytest.mark.parametrize(("c", "b"), [(0.5, 0.3), (1.5, -0.2), (0.3, 0.5)])
def test_adabn_undoes_a_contrast_and_brightness_change(c, b):
    """x -> c x + b (c > 0) moves each unit of the first linear layer by an affine map,
    which the first batch norm undoes once its statistics are measured on the new data."""
    torch.manual_seed(0)
    model = MLP((784, 50, 50, 10), "sigmoid", batch_norm="before").eval()
    X = torch.rand(500, 784)
    reference = adapt_batchnorm(copy.deepcopy(model), X)(X)
    shifted = c * X + b
    out = adapt_batchnorm(copy.deepcopy(model), shifted)(shifted)
    torch.testing.assert_close(out, reference, atol=1e-3, rtol=0)
    assert torch.equal(out.argmax(1), reference.argmax(1))


# ------------------------------------------------------------ plot_12_norm_penalties
@pytest.mark.parametrize(
    ("penalty", "expected"),
    [
        (l2_penalty(alpha=0.01), lambda w: 0.01 * w),
        (l1_penalty(alpha=0.01), lambda w: 0.01 * w.sign()),
    ],
    ids=["L2", "L1"],
)
def test_penalty_gradients_are_alpha_w_and_alpha_sign_w(penalty, expected):
    torch.manual_seed(0)
    net = MLP((784, 32, 10), "relu")
    penalty(net).backward()
    for m in net.linears:
        torch.testing.assert_close(m.weight.grad, expected(m.weight), atol=1e-7, rtol=0)
        assert m.bias.grad is None  # biases untouched


# -------------------------------------------------------------------- plot_13_dropout
def test_dropout_zeroes_about_p_and_doubles_the_rest():
    layer = Dropout(0.5, generator=torch.Generator().manual_seed(0))
    h = torch.ones(100_000)  # (units,)
    out = layer(h)
    zeroed = (out == 0).float().mean().item()
    assert abs(zeroed - 0.5) < 4 * (0.25 / len(h)) ** 0.5  # 4 binomial std
    assert set(out.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(layer.eval()(h), h)


def test_inverted_dropout_one_pass_is_the_mask_average_of_a_linear_network():
    """The exact average over all 2^4 masks of a linear network is its one pass."""
    torch.manual_seed(0)
    first, second, p = nn.Linear(6, 4), nn.Linear(4, 3), 0.5
    x = torch.randn(10, 6)
    masks = torch.cartesian_prod(*[torch.tensor([0.0, 1.0])] * 4)  # (16, 4)
    with torch.no_grad():
        average = torch.stack([second(first(x) * m / (1 - p)) for m in masks]).mean(0)
        torch.testing.assert_close(average, second(first(x)))


# ----------------------------------------------------- plot_13c_ensembles_label_smoothing
def test_the_loss_of_the_average_is_at_most_the_average_loss():
    """Cross-entropy is convex in the probabilities (Jensen): true for any members."""
    torch.manual_seed(0)
    y = torch.randint(0, 10, (2000,))
    for _ in range(20):
        probs = torch.softmax(3 * torch.randn(4, 2000, 10), -1)  # (members, images, classes)
        members = [F.nll_loss(p.log(), y).item() for p in probs]
        ensemble = F.nll_loss(probs.mean(0).log(), y).item()
        assert ensemble <= sum(members) / len(members) + 1e-9
