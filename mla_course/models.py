"""Multi-layer perceptrons, the networks of the lecture.

``MLP([784, 120, 80, 10], "sigmoid")`` is the network of Question 1: two hidden
layers of 120 and 80 units with a sigmoid, and 10 output scores (logits). The
softmax is not part of the model: ``nn.CrossEntropyLoss`` applies it, in the
numerically stable form ``log_softmax``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import torch
from torch import nn

from .layers import BatchNorm1d, Dropout

__all__ = ["ACTIVATIONS", "MLP", "make_activation"]

# name -> factory of a fresh module (PReLU has a learnt slope, so each layer needs its own).
ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),  # the lecture's max(0.01 x, x)
    "prelu": lambda: nn.PReLU(num_parameters=1, init=0.25),
    "elu": nn.ELU,
    "selu": nn.SELU,
    "gelu": nn.GELU,
    "silu": nn.SiLU,  # also called Swish
}


def make_activation(name: str) -> nn.Module:
    """A new activation module from its name (one of :data:`ACTIVATIONS`)."""
    try:
        return ACTIVATIONS[name]()
    except KeyError:
        raise ValueError(f"activation={name!r}: expected one of {sorted(ACTIVATIONS)}") from None


class MLP(nn.Module):
    """A fully connected network: ``Linear -> [norm] -> activation -> [dropout]`` per hidden layer.

    Parameters
    ----------
    sizes
        Layer widths from input to output, e.g. ``[784, 120, 80, 10]``.
    activation
        Name of the hidden activation, one of :data:`ACTIVATIONS`.
    batch_norm
        ``None`` (no normalisation), ``"before"`` the activation (Ioffe and Szegedy's
        choice) or ``"after"`` it.
    dropout
        Probability of zeroing a hidden unit during training (0 disables dropout).
    norm_layer, dropout_layer
        The classes used for batch norm and dropout: by default the from-scratch
        layers of :mod:`mla_course.layers`, the ones the book teaches (checked
        against PyTorch's); ``nn.BatchNorm1d`` and ``nn.Dropout`` fit too.
    """

    def __init__(
        self,
        sizes: Sequence[int] = (784, 120, 80, 10),
        activation: str = "sigmoid",
        *,
        batch_norm: str | None = None,
        dropout: float = 0.0,
        norm_layer: Callable[[int], nn.Module] = BatchNorm1d,
        dropout_layer: Callable[[float], nn.Module] = Dropout,
    ):
        super().__init__()
        sizes = list(sizes)
        if len(sizes) < 2 or any(type(s) is not int or s <= 0 for s in sizes):  # no bools
            raise ValueError(f"sizes={sizes!r}: expected at least two positive integers")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation={activation!r}: expected one of {sorted(ACTIVATIONS)}")
        if batch_norm not in (None, "before", "after"):
            raise ValueError(f"batch_norm={batch_norm!r}: expected None, 'before' or 'after'")
        if (
            isinstance(dropout, bool)
            or not isinstance(dropout, int | float)
            or not 0 <= dropout < 1
        ):
            raise ValueError(f"dropout={dropout!r}: expected a probability in [0, 1)")
        self.sizes, self.activation = sizes, activation
        self.batch_norm, self.dropout = batch_norm, dropout

        layers: list[nn.Module] = [nn.Flatten()]  # (batch, 1, 28, 28) -> (batch, 784)
        for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
            layers.append(nn.Linear(n_in, n_out))
            if i == len(sizes) - 2:
                break  # the output layer returns raw scores (logits)
            if batch_norm == "before":
                layers.append(norm_layer(n_out))
            layers.append(make_activation(activation))
            if batch_norm == "after":
                layers.append(norm_layer(n_out))
            if dropout > 0:
                layers.append(dropout_layer(dropout))
        self.net = nn.Sequential(*layers)

    @property
    def linears(self) -> list[nn.Linear]:
        """The linear layers, from input to output."""
        return [m for m in self.net if isinstance(m, nn.Linear)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # (batch, sizes[-1])

    def extra_repr(self) -> str:
        return f"sizes={self.sizes}, activation={self.activation!r}"
