"""Per-layer statistics of a network, read through hooks: what the lecture's figures plot.

For each ``nn.Linear`` layer, in the order the model registers them, with ``z``
its output (the pre-activation, ``(batch, units)``) and ``a`` the output of the
activation module that follows it:

* activations: mean and standard deviation of ``a``; the share of saturated
  units (``a`` within ``1 - saturation`` of the bounds of a sigmoid or tanh:
  ``a < 0.01`` or ``a > 0.99`` for a sigmoid by default), where ``sigma'`` nearly
  vanishes; the share of dead ReLU units, zero for every example of the batch;
* gradients: norms of the gradients of the loss with respect to the layer's
  weights and biases, and the variance of the gradient with respect to ``z``
  (Glorot and Bengio's "back-propagated gradient").

The norm of the bias gradient is what Nielsen calls the *speed of learning* of
a layer (:func:`learning_speed`): it is ``||dC/db^l||``, and ``dC/db^l`` is the
``delta^l`` that back-propagation carries from layer to layer.

:func:`trace` returns the raw tensors (for histograms), :func:`layer_stats` the
summaries on one batch. Every hook is removed afterwards.

References: M. Nielsen, *Neural Networks and Deep Learning*, chap. 5 (2015);
X. Glorot and Y. Bengio, "Understanding the difficulty of training deep
feedforward neural networks", AISTATS 2010.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "ACTIVATION_STATS",
    "GRADIENT_STATS",
    "STATS",
    "LayerStats",
    "LayerTrace",
    "activation_stats",
    "gradient_stats",
    "layer_stats",
    "learning_speed",
    "trace",
]

# Modules taken as the activation of the Linear layer that precedes them.
ACTIVATION_TYPES = (
    nn.Sigmoid, nn.Tanh, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.CELU, nn.SELU,
    nn.GELU, nn.SiLU, nn.Mish, nn.Softplus, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish,
)  # fmt: skip
ACTIVATION_STATS = ("act_mean", "act_std", "saturated", "dead")
GRADIENT_STATS = ("weight_grad_norm", "bias_grad_norm", "preact_grad_var")
STATS = ACTIVATION_STATS + GRADIENT_STATS
NAN = float("nan")


def _linears(model: nn.Module) -> list[nn.Linear]:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"model {type(model).__name__} has no nn.Linear layer to inspect")
    return linears


def _names(n: int) -> list[str]:
    return [f"hidden {i + 1}" for i in range(n - 1)] + ["output"]


def _check_saturation(saturation: float) -> None:
    if not 0.5 < saturation < 1:
        raise ValueError(f"saturation={saturation!r}: expected a number in (0.5, 1)")


def _activation_summary(a: torch.Tensor | None, act: nn.Module | None, saturation: float):
    """Mean, std, saturated share, dead share of activations ``a`` ``(batch, units)``."""
    if a is None:
        return {k: NAN for k in ACTIVATION_STATS}
    a = a.detach().float()
    if isinstance(act, nn.Sigmoid):
        saturated = ((a < 1 - saturation) | (a > saturation)).float().mean().item()
    elif isinstance(act, nn.Tanh):
        saturated = (a.abs() > saturation).float().mean().item()
    else:
        saturated = NAN  # no bounds to saturate against
    dead = NAN
    if isinstance(act, nn.ReLU | nn.ReLU6):
        dead = (a <= 0).all(dim=0).float().mean().item()  # units silent on the whole batch
    return {
        "act_mean": a.mean().item(),
        "act_std": a.std(unbiased=False).item(),
        "saturated": saturated,
        "dead": dead,
    }


def _norm(g: torch.Tensor | None) -> float:
    return NAN if g is None else g.detach().norm().item()


@dataclass
class LayerTrace:
    """What one ``nn.Linear`` layer saw on one batch (tensors detached, ``(batch, units)``)."""

    name: str
    z: torch.Tensor  # output of the Linear: the pre-activation
    a: torch.Tensor | None  # output of the activation that follows; None if none does
    activation: nn.Module | None
    z_grad: torch.Tensor | None = None  # dL/dz
    weight_grad: torch.Tensor | None = None  # dL/dW, (units, inputs)
    bias_grad: torch.Tensor | None = None  # dL/db, (units,)

    def __repr__(self) -> str:
        act = type(self.activation).__name__ if self.activation is not None else None
        grads = "with" if self.z_grad is not None else "without"
        return f"LayerTrace({self.name!r}, z={tuple(self.z.shape)}, activation={act}, {grads} gradients)"


class _Hooks:
    """Forward hooks that pair each Linear with the first activation module run after it."""

    def __init__(self, model: nn.Module, on_linear: Callable, on_activation: Callable):
        self.linears = _linears(model)
        self.last: int | None = None  # index of the last Linear that ran
        self.handles = []
        for i, layer in enumerate(self.linears):
            self.handles.append(layer.register_forward_hook(self._linear_hook(i, on_linear)))
        for m in model.modules():
            if isinstance(m, ACTIVATION_TYPES):
                self.handles.append(m.register_forward_hook(self._activation_hook(on_activation)))

    def _linear_hook(self, i, on_linear):
        def hook(module, inputs, output):
            self.last = i
            on_linear(i, module, output)

        return hook

    def _activation_hook(self, on_activation):
        def hook(module, inputs, output):
            if self.last is not None:
                on_activation(self.last, module, output)
                self.last = None  # only the first activation after a Linear counts

        return hook

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()


def trace(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    loss_fn: Callable = F.cross_entropy,
) -> list[LayerTrace]:
    """Run ``model`` on ``x`` and return, per Linear layer, ``z``, ``a`` and (if ``y`` is given) the gradients.

    The gradients of ``loss_fn(model(x), y)`` are computed with
    ``torch.autograd.grad``: the parameters' ``.grad`` are left untouched. The
    model is run in whatever mode (train or eval) it is in.
    """
    zs: dict[int, torch.Tensor] = {}
    acts: dict[int, tuple[torch.Tensor, nn.Module]] = {}
    hooks = _Hooks(
        model, lambda i, m, z: zs.__setitem__(i, z), lambda i, m, a: acts.__setitem__(i, (a, m))
    )
    try:
        with torch.set_grad_enabled(y is not None):
            out = model(x)
            n = len(hooks.linears)
            missing = [i for i in range(n) if i not in zs]
            if missing:
                raise ValueError(
                    f"Linear layers {missing} did not run in model(x): cannot trace them"
                )
            # wrt: z of each layer, then each weight, then each bias (None where a layer has none)
            wrt = [zs[i] for i in range(n)] + [m.weight for m in hooks.linears]
            wrt += [m.bias for m in hooks.linears]
            grads: list[torch.Tensor | None] = [None] * len(wrt)
            if y is not None:
                loss = loss_fn(out, y)
                found = iter(torch.autograd.grad(loss, [t for t in wrt if t is not None]))
                grads = [next(found) if t is not None else None for t in wrt]
    finally:
        hooks.remove()
    names = _names(n)
    return [
        LayerTrace(
            name=names[i],
            z=zs[i].detach(),
            a=acts[i][0].detach() if i in acts else None,
            activation=acts[i][1] if i in acts else None,
            z_grad=grads[i],
            weight_grad=grads[n + i],
            bias_grad=grads[2 * n + i],
        )
        for i in range(n)
    ]


class LayerStats:
    """Per-layer summaries: ``stats["weight_grad_norm"]`` is an array with one value per Linear layer."""

    def __init__(self, names: list[str], values: dict[str, np.ndarray]):
        self.names, self.values = list(names), values

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self.values:
            raise KeyError(f"{key!r}: expected one of {sorted(self.values)}")
        return self.values[key]

    def keys(self):
        return self.values.keys()

    def __repr__(self) -> str:
        keys = list(self.values)
        width = max(len(n) for n in self.names)
        lines = [" " * width + "".join(f"{k:>18}" for k in keys)]
        for i, name in enumerate(self.names):
            lines.append(f"{name:<{width}}" + "".join(f"{self.values[k][i]:>18.4g}" for k in keys))
        return "\n".join(lines)


def _summaries(traces: list[LayerTrace], saturation: float) -> LayerStats:
    rows = []
    for t in traces:
        row = _activation_summary(t.a, t.activation, saturation)
        row["weight_grad_norm"] = _norm(t.weight_grad)
        row["bias_grad_norm"] = _norm(t.bias_grad)
        row["preact_grad_var"] = NAN if t.z_grad is None else t.z_grad.var(unbiased=False).item()
        rows.append(row)
    return LayerStats([t.name for t in traces], {k: np.array([r[k] for r in rows]) for k in STATS})


def layer_stats(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    loss_fn: Callable = F.cross_entropy,
    saturation: float = 0.99,
) -> LayerStats:
    """Every statistic of :data:`STATS` per Linear layer on the batch ``x`` (gradients only if ``y``)."""
    _check_saturation(saturation)
    return _summaries(trace(model, x, y, loss_fn), saturation)


def activation_stats(model: nn.Module, x: torch.Tensor, saturation: float = 0.99) -> LayerStats:
    """Mean, std, saturated share and dead-unit share of each layer's activations on ``x``."""
    s = layer_stats(model, x, saturation=saturation)
    return LayerStats(s.names, {k: s[k] for k in ACTIVATION_STATS})


def gradient_stats(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable = F.cross_entropy
) -> LayerStats:
    """Norms of the weight and bias gradients and variance of ``dL/dz`` for each layer."""
    s = layer_stats(model, x, y, loss_fn)
    return LayerStats(s.names, {k: s[k] for k in GRADIENT_STATS})


def learning_speed(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable = F.cross_entropy
) -> np.ndarray:
    """Nielsen's speed of learning of each layer: ``||dC/db^l||`` on the batch ``(x, y)``, ``(layers,)``."""
    return gradient_stats(model, x, y, loss_fn)["bias_grad_norm"]
