"""The identities and constructions behind the chapter-1 pages (gallery/01_architecture).

Each test is a fact a page teaches that no experiment could refute: a gradient equal
to autograd's, a formula's variance, a factor the set-up builds in, a symmetry that
the update rule preserves. They were checks on the pages; here they guard the pages'
teaching without counting as claims. Each re-creates the page's small computation.
"""

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from mla_course import losses
from mla_course.data import load_tensors
from mla_course.init import init_, kaiming_normal_, normal_, uniform_fan_in_, xavier_uniform_
from mla_course.models import MLP, make_activation


def _g(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------------
# plot_01_gradient_dispersion
# ---------------------------------------------------------------------------


def test_normalised_mnist_images_are_over_two_and_a_half_times_larger(mirror):
    raw, _ = load_tensors("mnist", "train", limit=1000, normalize=False)
    normalised, _ = load_tensors("mnist", "train", limit=1000)
    norms = [x.flatten(1).norm(dim=1).mean().item() for x in (raw, normalised)]
    assert norms[1] > 2.5 * norms[0]


# ---------------------------------------------------------------------------
# plot_01b_unstable_gradient
# ---------------------------------------------------------------------------


def test_the_sigmoid_slope_never_exceeds_a_quarter():
    z = torch.linspace(-20, 20, 4001, dtype=torch.float64)
    a = torch.sigmoid(z)
    slope = a * (1 - a)
    assert slope.max().item() == pytest.approx(0.25)
    z = 3 * torch.randn(1000, 30, generator=_g())  # any pre-activations
    a = torch.sigmoid(z)
    assert (a * (1 - a)).mean().item() < 0.25


def test_nielsens_chain_multiplies_the_gradient_by_25_per_neuron():
    w = torch.full((6,), 100.0, dtype=torch.float64)
    b = torch.zeros(6, dtype=torch.float64, requires_grad=True)
    a = torch.tensor(1.0, dtype=torch.float64)
    for j in range(6):
        a = torch.sigmoid(w[j] * a + b[j] - w[j] * a.detach())  # z_j = b_j = 0
    a.backward()
    grow = b.grad[:-1] / b.grad[1:]
    torch.testing.assert_close(grow, torch.full_like(grow, 25.0))


# ---------------------------------------------------------------------------
# plot_02_cross_entropy
# ---------------------------------------------------------------------------


def _page_logits():
    g = _g()
    logits = 3 * torch.randn(4, 10, generator=g, dtype=torch.float64)
    return logits, torch.randint(10, (4,), generator=g)


def test_softmax_minus_target_is_autograds_gradient():
    logits, target = _page_logits()
    o = logits.clone().requires_grad_()
    F.cross_entropy(o, target, reduction="sum").backward()
    ours = losses.cross_entropy_grad(logits, target)
    assert (ours - o.grad).abs().max().item() < 1e-8


def test_softmax_minus_target_matches_finite_differences():
    logits, target = _page_logits()
    eps = 1e-6
    steps = eps * torch.eye(40, dtype=torch.float64).view(-1, 4, 10)
    numeric = torch.stack(
        [
            losses.cross_entropy(logits + e, target, "sum")
            - losses.cross_entropy(logits - e, target, "sum")
            for e in steps
        ]
    ).view_as(logits) / (2 * eps)
    ours = losses.cross_entropy_grad(logits, target)
    assert (ours - numeric).abs().max().item() < 1e-8
    assert ours.sum(1).abs().max().item() < 1e-12  # each row sums to 0


def test_on_raw_scores_the_loss_is_negative_and_a_log_is_nan():
    scores = torch.tensor([[2.0, -1.0, 0.5]])
    assert -torch.log(scores[0, 0]).item() < 0
    assert torch.log(scores[0, 1]).isnan()
    probs = losses.softmax(scores)
    assert (probs > 0).all() and probs.sum().item() == pytest.approx(1.0)


def test_far_on_the_wrong_side_the_cross_entropy_gradient_dwarfs_the_squared_errors():
    batch = torch.zeros(1, 10, dtype=torch.float64)
    batch[0, 0] = -8.0
    true = torch.zeros(1, dtype=torch.long)
    ce = losses.cross_entropy_grad(batch, true)[0, 0].abs()
    l2 = losses.sigmoid_l2_grad(batch, true)[0, 0].abs()
    assert (ce / l2).item() > 100


def test_the_naive_log_softmax_breaks_in_float32_and_the_stable_one_does_not():
    s = torch.linspace(1, 120, 239)
    three = torch.stack([s, torch.zeros_like(s), -s], dim=1)
    naive = losses.log_softmax(three, stable=False)
    stable = losses.log_softmax(three)
    assert not torch.isfinite(naive).all()
    assert torch.isfinite(stable).all()
    assert (stable - torch.log_softmax(three, 1)).abs().max().item() < 1e-5


def test_with_label_smoothing_the_gradient_vanishes_at_the_target_and_pushes_back():
    smooth = torch.full((1, 10), 0.1 / 9, dtype=torch.float64)
    smooth[0, 0] = 0.9
    at_target = torch.log(smooth)  # scores whose softmax is exactly y*
    assert losses.cross_entropy_grad(at_target, smooth).abs().max().item() < 1e-12
    big = torch.zeros(1, 10, dtype=torch.float64)
    big[0, 0] = 20.0
    assert losses.cross_entropy_grad(big, smooth)[0, 0].item() > 0


# ---------------------------------------------------------------------------
# plot_04_activations
# ---------------------------------------------------------------------------


def _slope(name, x):
    x = x.clone().requires_grad_()
    (dy,) = torch.autograd.grad(make_activation(name)(x).sum(), x)
    return dy


def test_slopes_peak_at_a_quarter_for_the_sigmoid_and_one_for_tanh_and_relu():
    x = torch.linspace(-4, 4, 401)
    assert _slope("sigmoid", x).max().item() == pytest.approx(0.25, abs=1e-4)
    assert _slope("tanh", x).max().item() == pytest.approx(1.0, abs=1e-4)
    assert _slope("relu", x).max().item() == 1.0


def test_relu_passes_no_gradient_for_negative_inputs():
    x = torch.linspace(-4, -0.01, 200)
    assert _slope("relu", x).abs().max().item() == 0


def test_a_leaky_relu_unit_is_never_zero_away_from_zero():
    x = torch.cat([-(10.0 ** torch.arange(-6.0, 6.0)), 10.0 ** torch.arange(-6.0, 6.0)])
    assert (make_activation("leaky_relu")(x) != 0).all()


# ---------------------------------------------------------------------------
# plot_05_initialisation
# ---------------------------------------------------------------------------


def _train(model, steps=30, lr=0.5, seed=0):
    g = _g(seed)
    x, y = torch.randn(steps, 64, 784, generator=g), torch.randint(10, (steps, 64), generator=g)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for xb, yb in zip(x, y, strict=True):
        optimizer.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        optimizer.step()
    return model


def test_from_constant_weights_the_units_of_a_layer_stay_copies():
    model = _train(init_(MLP([784, 30, 30, 10], "sigmoid"), "constant"))
    for layer in model.linears[:2]:
        w = layer.weight.detach()
        assert (w - w[0]).abs().max().item() == 0
    torch.manual_seed(0)
    model = _train(init_(MLP([784, 30, 30, 10], "sigmoid"), "xavier_uniform"))
    w = model.linears[0].weight.detach()
    assert (w - w[0]).abs().max().item() > 0.1


def _twins(copy_outgoing):
    torch.manual_seed(1)
    model = MLP([784, 30, 10], "sigmoid")
    first, second = model.linears
    with torch.no_grad():
        first.weight[1], first.bias[1] = first.weight[0], first.bias[0]
        if copy_outgoing:
            second.weight[:, 1] = second.weight[:, 0]
    _train(model)
    return (first.weight[1] - first.weight[0]).norm().item()


def test_twins_in_the_whole_network_stay_copies_and_others_drift_apart():
    assert _twins(copy_outgoing=True) == 0
    assert _twins(copy_outgoing=False) > 0


FAN_INS = [10, 30, 100, 300, 1000, 3000]


def test_the_pre_activation_variance_follows_the_fan_in():
    g = _g()
    saturated = []
    for n in FAN_INS:
        x = torch.randn(5000, n, generator=g)
        z = x @ normal_(torch.empty(256, n), std=1.0, generator=g).T
        assert z.var().item() / n == pytest.approx(1, rel=0.15)
        saturated.append((torch.sigmoid(z) - 0.5).abs().gt(0.49).float().mean().item())
        z = x @ uniform_fan_in_(torch.empty(256, n), generator=g).T
        assert z.var().item() == pytest.approx(1 / 3, rel=0.15)
    assert all(b > a for a, b in itertools.pairwise(saturated))


@pytest.mark.parametrize(
    ("scheme", "var"),
    [
        (uniform_fan_in_, 1 / (3 * 784)),
        (xavier_uniform_, 2 / (784 + 256)),
        (kaiming_normal_, 2 / 784),
    ],
)
def test_each_rule_draws_the_variance_its_formula_says(scheme, var):
    drawn = scheme(torch.empty(256, 784), generator=_g()).var().item()
    assert drawn == pytest.approx(var, rel=0.02)


def test_for_relu_inputs_he_gives_variance_one_and_the_lectures_rule_a_sixth():
    g = _g()
    for n in FAN_INS:
        x = torch.relu(torch.randn(5000, n, generator=g))
        he = (x @ kaiming_normal_(torch.empty(256, n), generator=g).T).var().item()
        lecture = (x @ uniform_fan_in_(torch.empty(256, n), generator=g).T).var().item()
        assert he == pytest.approx(1, rel=0.2)
        assert lecture == pytest.approx(1 / 6, rel=0.2)
    assert math.isclose(2 / 784 * 784 * 0.5, 1)  # n * 2/n * E[x^2] = 1
