"""Norm penalties: the term :math:`\\alpha\\,\\Omega(\\theta)` added to the loss, for
``fit(..., penalty=...)`` (:func:`~mla_course.train.fit`).

:func:`l2_penalty` (weight decay) and :func:`l1_penalty` (LASSO) read the weights of the
model they are given at each step; biases and batch-norm parameters are left out.

References
----------
I. Goodfellow, Y. Bengio and A. Courville, *Deep Learning*, MIT Press 2016, section 7.1.
"""

from __future__ import annotations

import math

import torch
from torch import nn

__all__ = ["NormPenalty", "l1_norm", "l1_penalty", "l2_penalty"]


def _check_alpha(alpha) -> None:
    ok = isinstance(alpha, int | float) and not isinstance(alpha, bool) and math.isfinite(alpha)
    if not (ok and alpha >= 0):
        raise ValueError(f"alpha={alpha!r}: expected a finite number >= 0")


class NormPenalty:
    """``alpha * Omega(weights)``, a callable of the model for ``fit(..., penalty=...)``."""

    def __init__(self, name: str, alpha: float):
        _check_alpha(alpha)
        self.name, self.alpha = name, alpha

    def __call__(self, model: nn.Module) -> torch.Tensor:
        weights = _weights(model)
        if self.name == "l1":
            return self.alpha * l1_norm(weights)
        return self.alpha / 2 * sum(w.pow(2).sum() for w in weights)

    def __repr__(self) -> str:
        return f"{self.name}_penalty(alpha={self.alpha!r})"


def _weights(model: nn.Module) -> list[torch.Tensor]:
    """The weight matrices and kernels: biases and batch-norm gamma/beta (1-D) are left out."""
    weights = [p for name, p in model.named_parameters() if name.endswith("weight") and p.dim() > 1]
    if not weights:
        raise ValueError(f"model {type(model).__name__} has no weight matrix to penalise")
    return weights


def l2_penalty(model: nn.Module | None = None, alpha: float = 1e-4) -> NormPenalty:
    """The L2 penalty (weight decay, ridge): ``alpha / 2 * sum(w ** 2)`` over the weights.

    The factor 1/2 (Goodfellow et al., eq. 7.1) makes the gradient ``alpha * w``,
    so SGD with this penalty takes the same steps as
    ``torch.optim.SGD(..., weight_decay=alpha)`` restricted to the weights.
    Biases are not penalised: they do not make the model more flexible. The
    returned callable reads the weights of the model it is given at each step;
    ``model``, if passed here, is only checked at once to have weights.
    """
    if model is not None:
        _weights(model)
    return NormPenalty("l2", alpha)


def l1_norm(weights, *, stacked: bool = False) -> torch.Tensor:
    """``Omega(theta) = sum(|w|)`` over the weight tensors ``weights``: the L1 penalty's norm.

    ``stacked=True`` reads each tensor as ``M`` networks stacked along its first
    axis (the weights of :class:`mla_course.engine.StackedMLP`, ``(M, n_in,
    n_out)``) and returns the ``M`` norms, one per network, shape ``(M,)``.
    """
    if stacked:
        return sum(w.abs().flatten(1).sum(1) for w in weights)
    return sum(w.abs().sum() for w in weights)


def l1_penalty(model: nn.Module | None = None, alpha: float = 1e-4) -> NormPenalty:
    """The L1 penalty (LASSO): ``alpha * sum(|w|)`` over the weights, which favours exact zeros.

    As for :func:`l2_penalty`, biases are left out and ``model`` is only checked.
    """
    if model is not None:
        _weights(model)
    return NormPenalty("l1", alpha)
