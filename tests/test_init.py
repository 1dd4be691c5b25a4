"""The initialisation schemes draw from the same distributions as torch.nn.init."""

import math

import pytest
import torch
from torch import nn

from mla_course import init
from mla_course.models import MLP

SHAPE = (400, 600)  # 240 000 weights: moments within a few 1e-3 of their limits


def _torch_default(w):
    return nn.init.kaiming_uniform_(w, a=math.sqrt(5))  # what nn.Linear.reset_parameters does


# (our scheme, kwargs, torch's counterpart, whether the law is uniform)
CASES = [
    ("default", {}, _torch_default, True),
    ("uniform_fan_in", {}, _torch_default, True),
    ("normal", {"std": 0.3}, lambda w: nn.init.normal_(w, std=0.3), False),
    ("xavier_uniform", {}, nn.init.xavier_uniform_, True),
    ("xavier_uniform", {"gain": 2.0}, lambda w: nn.init.xavier_uniform_(w, gain=2.0), True),
    ("xavier_normal", {}, nn.init.xavier_normal_, False),
    ("kaiming_uniform", {}, lambda w: nn.init.kaiming_uniform_(w, nonlinearity="relu"), True),
    ("kaiming_normal", {}, lambda w: nn.init.kaiming_normal_(w, nonlinearity="relu"), False),
    (
        "kaiming_normal",
        {"nonlinearity": "tanh"},
        lambda w: nn.init.kaiming_normal_(w, nonlinearity="tanh"),
        False,
    ),
]


@pytest.mark.parametrize(("scheme", "kw", "reference", "uniform"), CASES)
def test_same_moments_and_bounds_as_torch(scheme, kw, reference, uniform):
    ours = init.INITS[scheme](torch.empty(SHAPE), generator=torch.Generator().manual_seed(0), **kw)
    torch.manual_seed(1)
    theirs = reference(torch.empty(SHAPE))
    assert abs(ours.mean()) < 0.02 * theirs.std()
    torch.testing.assert_close(ours.var(), theirs.var(), rtol=0.02, atol=0)
    if uniform:  # same support: the extremes come within 0.1 % of the same bound
        torch.testing.assert_close(ours.abs().max(), theirs.abs().max(), rtol=1e-3, atol=0)
    else:  # Gaussian: same fourth moment (kurtosis 3), unlike a uniform law (1.8)
        kurtosis = ((ours - ours.mean()) ** 4).mean() / ours.var() ** 2
        assert abs(kurtosis - 3) < 0.1


def test_uniform_fan_in_bound_is_one_over_sqrt_n():
    w = init.uniform_fan_in_(torch.empty(50, 400))
    assert w.abs().max() <= 1 / math.sqrt(400)
    assert w.abs().max() > 0.99 / math.sqrt(400)


def test_gain_matches_torch():
    for name in ("linear", "sigmoid", "tanh", "relu", "selu"):
        assert init.calculate_gain(name) == pytest.approx(nn.init.calculate_gain(name))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(
        nn.init.calculate_gain("leaky_relu", 0.2)
    )


def test_fans_follow_torch_convention():
    assert init.fans(torch.empty(30, 784)) == (784, 30)  # nn.Linear(784, 30).weight
    assert init.fans(torch.empty(8, 3, 5, 5)) == (75, 200)


def test_generator_makes_draws_repeatable():
    a = init.xavier_normal_(torch.empty(20, 10), generator=torch.Generator().manual_seed(3))
    b = init.xavier_normal_(torch.empty(20, 10), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_init_covers_every_linear_and_zeroes_biases():
    model = nn.Sequential(MLP([10, 7, 5, 3], "relu"), nn.Linear(3, 2))
    init.init_(model, "constant", value=0.5)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    assert len(linears) == 4
    for layer in linears:
        assert torch.all(layer.weight == 0.5)
        assert torch.all(layer.bias == 0)


def test_init_normal_sets_the_std_of_every_layer():
    torch.manual_seed(0)
    model = init.init_(MLP([300, 300, 300], "sigmoid"), "normal", std=2.0)
    for layer in model.linears:
        assert layer.weight.std().item() == pytest.approx(2.0, rel=0.02)


def test_default_leaves_the_model_untouched():
    torch.manual_seed(0)
    model = MLP([10, 7, 3], "tanh")
    before = [p.clone() for p in model.parameters()]
    assert init.init_(model, "default") is model
    for p, q in zip(model.parameters(), before, strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    assert model.linears[0].bias.abs().max() > 0  # PyTorch's biases are not zero


@pytest.mark.parametrize(
    ("scheme", "kw", "match"),
    [
        ("glorot", {}, "expected one of"),
        ("normal", {"sigma": 1.0}, r"unexpected arguments \['sigma'\]: allowed \['std'"),
        ("default", {"std": 1.0}, "allowed"),
        ("normal", {"std": -1.0}, "std=-1.0: expected a positive"),
        ("normal", {"std": float("nan")}, "std=nan"),
        ("kaiming_normal", {"nonlinearity": "softmax"}, "nonlinearity='softmax'"),
        ("constant", {"value": float("inf")}, "value=inf"),
    ],
)
def test_bad_arguments_raise_value_error(scheme, kw, match):
    with pytest.raises(ValueError, match=match):
        init.init_(MLP([4, 3, 2]), scheme, **kw)


def test_model_without_linear_raises():
    with pytest.raises(ValueError, match=r"no nn\.Linear"):
        init.init_(nn.Sequential(nn.ReLU()), "xavier_uniform")


def test_one_dimensional_weight_raises():
    with pytest.raises(ValueError, match="at least 2 dimensions"):
        init.xavier_uniform_(torch.empty(10))


def test_default_with_a_generator_draws_weights_and_biases_as_pytorch_does():
    model = nn.Sequential(nn.Linear(400, 300), nn.Linear(300, 10))
    init.init_(model, "default", generator=torch.Generator().manual_seed(0))
    w, b = model[0].weight.detach(), model[0].bias.detach()
    bound = 1 / math.sqrt(400)
    assert float(w.abs().max()) <= bound and float(b.abs().max()) <= bound
    assert float(w.std()) == pytest.approx(bound / math.sqrt(3), rel=0.02)
    assert float(b.std()) == pytest.approx(bound / math.sqrt(3), rel=0.2)
    again = nn.Sequential(nn.Linear(400, 300), nn.Linear(300, 10))
    init.init_(again, "default", generator=torch.Generator().manual_seed(0))
    assert all(
        torch.equal(a, b) for a, b in zip(model.parameters(), again.parameters(), strict=True)
    )
    init.init_(again, "constant", generator=torch.Generator())  # a scheme that draws nothing
