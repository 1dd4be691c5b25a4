"""Weight initialisation schemes, written out so that each formula is visible.

Each scheme is a function that fills a weight tensor in place and returns it;
:func:`init_` applies one to every ``nn.Linear`` of a model. A weight of shape
``(m, n)`` maps ``n`` inputs (``fan_in``) to ``m`` outputs (``fan_out``), as in
``nn.Linear(n, m)``.

* ``"default"``: PyTorch's own ``nn.Linear`` init, left untouched;
* ``"constant"``: ``value`` everywhere, so the symmetry is never broken (the lecture);
* ``"normal"``: ``N(0, std^2)`` whatever the layer's size (the lecture's too small or too
  large variance);
* ``"uniform_fan_in"``: ``U(-1/sqrt(n), 1/sqrt(n))``, the lecture's first solution;
* ``"xavier_uniform"``: ``U(-a, a)`` with ``a = gain sqrt(6 / (n + m))``, Glorot & Bengio (2010);
* ``"xavier_normal"``: ``N(0, gain^2 2 / (n + m))``, Glorot & Bengio (2010);
* ``"kaiming_uniform"``: ``U(-a, a)`` with ``a = gain sqrt(3 / n)``, He et al. (2015);
* ``"kaiming_normal"``: ``N(0, gain^2 / n)``, He et al. (2015).

The Kaiming schemes use the ReLU gain ``sqrt(2)`` unless told otherwise: a ReLU
zeroes half of its inputs, so it halves the variance that the next layer sees.
PyTorch's default for ``nn.Linear`` is ``kaiming_uniform_(w, a=sqrt(5))``, which
works out to exactly the lecture's ``U(-1/sqrt(n), 1/sqrt(n))``, biases included.

References: X. Glorot and Y. Bengio, "Understanding the difficulty of training
deep feedforward neural networks", AISTATS 2010; K. He et al., "Delving deep into
rectifiers", ICCV 2015; ``torch.nn.init``, whose conventions (fans, gains) are
followed here and checked against in the tests.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import torch
from torch import nn

__all__ = [
    "INITS",
    "calculate_gain",
    "constant_",
    "fans",
    "init_",
    "kaiming_normal_",
    "kaiming_uniform_",
    "normal_",
    "uniform_fan_in_",
    "xavier_normal_",
    "xavier_uniform_",
]

Generator = torch.Generator | None


def fans(w: torch.Tensor) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of a weight of shape ``(out, in, *kernel)``, as ``torch.nn.init``."""
    if w.dim() < 2:
        raise ValueError(
            f"weight of shape {tuple(w.shape)}: expected at least 2 dimensions (out, in)"
        )
    receptive = math.prod(w.shape[2:])  # 1 for a linear layer
    return w.shape[1] * receptive, w.shape[0] * receptive


def calculate_gain(nonlinearity: str = "relu", negative_slope: float = 0.01) -> float:
    """The factor that keeps the variance of activations through ``nonlinearity``.

    Same values as ``torch.nn.init.calculate_gain``: ``sqrt(2)`` for ReLU (it zeroes
    half of its inputs), ``5/3`` for tanh, 1 for a linear or sigmoid layer.
    """
    gains = {
        "linear": 1.0,
        "sigmoid": 1.0,
        "tanh": 5.0 / 3.0,
        "relu": math.sqrt(2.0),
        "leaky_relu": math.sqrt(2.0 / (1.0 + negative_slope**2)),
        "selu": 3.0 / 4.0,
    }
    if nonlinearity not in gains:
        raise ValueError(f"nonlinearity={nonlinearity!r}: expected one of {sorted(gains)}")
    return gains[nonlinearity]


def _positive(name: str, value) -> None:
    if not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name}={value!r}: expected a positive finite number")


def _device(generator: Generator, w: torch.Tensor) -> torch.device:
    """Draw on the generator's device (then copy), so that a CPU generator seeds CUDA weights too."""
    return generator.device if generator is not None else w.device


@torch.no_grad()
def _uniform(w: torch.Tensor, bound: float, generator: Generator) -> torch.Tensor:
    u = torch.rand(w.shape, generator=generator, dtype=w.dtype, device=_device(generator, w))
    return w.copy_((2 * u - 1) * bound)  # U(0, 1) -> U(-bound, bound)


@torch.no_grad()
def _normal(w: torch.Tensor, std: float, generator: Generator, mean: float = 0.0) -> torch.Tensor:
    z = torch.randn(w.shape, generator=generator, dtype=w.dtype, device=_device(generator, w))
    return w.copy_(mean + std * z)


@torch.no_grad()
def constant_(w: torch.Tensor, value: float = 0.1) -> torch.Tensor:
    """Every weight equal to ``value``: the neurons of a layer stay identical during training."""
    if not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"value={value!r}: expected a finite number")
    fans(w)
    return w.fill_(value)


def normal_(w: torch.Tensor, std: float = 0.01, *, generator: Generator = None) -> torch.Tensor:
    """``N(0, std^2)`` whatever the layer's size: too small or too large a ``std`` on purpose."""
    _positive("std", std)
    fans(w)
    return _normal(w, std, generator)


def uniform_fan_in_(w: torch.Tensor, *, generator: Generator = None) -> torch.Tensor:
    """The lecture's first solution: ``U(-1/sqrt(n), 1/sqrt(n))`` with ``n`` the number of inputs.

    Also PyTorch's ``nn.Linear`` weight init, ``kaiming_uniform_(w, a=sqrt(5))``: ``INITS["default"]``.
    """
    return _uniform(w, 1.0 / math.sqrt(fans(w)[0]), generator)


def xavier_uniform_(
    w: torch.Tensor, gain: float = 1.0, *, generator: Generator = None
) -> torch.Tensor:
    """Glorot & Bengio (2010), eq. 16: ``U(±gain sqrt(6 / (n + m)))``, variance ``2 / (n + m)``."""
    _positive("gain", gain)
    fan_in, fan_out = fans(w)
    return _uniform(w, gain * math.sqrt(6.0 / (fan_in + fan_out)), generator)


def xavier_normal_(
    w: torch.Tensor, gain: float = 1.0, *, generator: Generator = None
) -> torch.Tensor:
    """Glorot & Bengio (2010) with a Gaussian: ``N(0, gain^2 2 / (n + m))``."""
    _positive("gain", gain)
    fan_in, fan_out = fans(w)
    return _normal(w, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def kaiming_uniform_(
    w: torch.Tensor,
    nonlinearity: str = "relu",
    negative_slope: float = 0.01,
    *,
    generator: Generator = None,
) -> torch.Tensor:
    """He et al. (2015): ``U(±gain sqrt(3 / n))``, variance ``gain^2 / n`` (``2 / n`` for ReLU)."""
    gain = calculate_gain(nonlinearity, negative_slope)
    return _uniform(w, gain * math.sqrt(3.0 / fans(w)[0]), generator)


def kaiming_normal_(
    w: torch.Tensor,
    nonlinearity: str = "relu",
    negative_slope: float = 0.01,
    *,
    generator: Generator = None,
) -> torch.Tensor:
    """He et al. (2015), eq. 10: ``N(0, gain^2 / n)`` (``2 / n`` for ReLU)."""
    gain = calculate_gain(nonlinearity, negative_slope)
    return _normal(w, gain / math.sqrt(fans(w)[0]), generator)


# name -> function filling a weight tensor in place (the names accepted by init_ and config.Config).
INITS: dict[str, Callable[..., torch.Tensor]] = {
    "default": uniform_fan_in_,  # PyTorch's nn.Linear init is the same U(±1/sqrt(n))
    "constant": constant_,
    "normal": normal_,
    "uniform_fan_in": uniform_fan_in_,
    "xavier_uniform": xavier_uniform_,
    "xavier_normal": xavier_normal_,
    "kaiming_uniform": kaiming_uniform_,
    "kaiming_normal": kaiming_normal_,
}


def _check_kwargs(scheme: str, kw: dict) -> None:
    allowed = [
        p for p in inspect.signature(INITS[scheme]).parameters if p not in ("w", "generator")
    ]
    if scheme == "default":
        allowed = []  # PyTorch's own U(±1/sqrt(n)), weights and biases
    unknown = sorted(set(kw) - set(allowed))
    if unknown:
        raise ValueError(f"init {scheme!r} got unexpected arguments {unknown}: allowed {allowed}")


def init_(
    model: nn.Module, scheme: str = "default", *, generator: Generator = None, **kw
) -> nn.Module:
    """Initialise every ``nn.Linear`` of ``model`` with ``scheme`` (a key of :data:`INITS`).

    Weights are drawn by the scheme and biases set to zero, except for
    ``"default"``, PyTorch's own ``U(±1/sqrt(n))`` for weights and biases both: with a
    ``generator`` it draws them again from it, without one it leaves them as PyTorch
    drew them. Random schemes draw from ``generator`` (the global generator if ``None``);
    ``kw`` goes to the scheme, e.g. ``init_(model, "normal", std=0.01)``. Returns ``model``.
    """
    if scheme not in INITS:
        raise ValueError(f"scheme={scheme!r}: expected one of {sorted(INITS)}")
    _check_kwargs(scheme, kw)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"model {type(model).__name__} has no nn.Linear layer to initialise")
    if scheme == "default" and generator is None:
        return model
    if "generator" in inspect.signature(INITS[scheme]).parameters:
        kw["generator"] = generator
    with torch.no_grad():
        for layer in linears:
            INITS[scheme](layer.weight, **kw)
            if layer.bias is None:
                continue
            if scheme == "default":
                _uniform(layer.bias, 1.0 / math.sqrt(layer.in_features), generator)
            else:
                layer.bias.zero_()
    return model
