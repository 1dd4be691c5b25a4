import pytest
import torch
from torch import nn

from mla_course.layers import BatchNorm1d, Dropout
from mla_course.models import ACTIVATIONS, MLP, make_activation


@pytest.mark.parametrize("name", sorted(ACTIVATIONS))
def test_every_activation_builds_and_runs(name):
    model = MLP([784, 20, 10], activation=name)
    out = model(torch.randn(5, 1, 28, 28))
    assert out.shape == (5, 10)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_question1_network():
    model = MLP([784, 120, 80, 10], "sigmoid")
    assert [(m.in_features, m.out_features) for m in model.linears] == [
        (784, 120),
        (120, 80),
        (80, 10),
    ]
    assert sum(isinstance(m, nn.Sigmoid) for m in model.modules()) == 2  # none after the output
    assert (
        sum(p.numel() for p in model.parameters()) == 784 * 120 + 120 + 120 * 80 + 80 + 80 * 10 + 10
    )
    assert "sizes=[784, 120, 80, 10]" in repr(model)


def test_unknown_activation_lists_the_allowed_ones():
    with pytest.raises(ValueError, match=r"activation='softsign': expected one of \['elu', 'gelu'"):
        MLP([784, 10, 10], "softsign")
    with pytest.raises(ValueError, match="activation='swish'"):
        make_activation("swish")


def test_prelu_layers_have_their_own_slope():
    model = MLP([784, 8, 8, 10], "prelu")
    slopes = [m.weight for m in model.modules() if isinstance(m, nn.PReLU)]
    assert len(slopes) == 2 and slopes[0] is not slopes[1]


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        ("before", [nn.Linear, BatchNorm1d, nn.ReLU]),
        ("after", [nn.Linear, nn.ReLU, BatchNorm1d]),
    ],
)
def test_batch_norm_position(position, expected):
    model = MLP([784, 16, 10], "relu", batch_norm=position, dropout=0.5)
    types = [type(m) for m in model.net][1:]
    assert types == [*expected, Dropout, nn.Linear]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sizes": [784]}, "at least two positive integers"),
        ({"sizes": [784, 0, 10]}, "at least two positive integers"),
        ({"batch_norm": "middle"}, "batch_norm='middle'"),
        ({"dropout": 1.0}, r"dropout=1.0: expected a probability in \[0, 1\)"),
        ({"sizes": [784, True, 10]}, "sizes=\\[784, True, 10\\]: expected at least two positive"),
        ({"sizes": [784, 12.0, 10]}, "at least two positive integers"),
        ({"dropout": float("nan")}, "dropout=nan"),
        ({"dropout": "0.5"}, "dropout='0.5'"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MLP(**kwargs)
