"""Softmax, cross-entropy and its gradient, from scratch: the lecture's exercise.

The network outputs scores ``o`` (logits); the softmax turns them into
probabilities ``y_j = exp(o_j) / sum_k exp(o_k)`` and the cross-entropy compares
them with the target distribution ``y*`` (one-hot for a class label)::

    l(o, y*) = - sum_i y*_i log y_i = - sum_i y*_i o_i + log sum_k exp(o_k)

so that, since ``sum_i y*_i = 1``, ``dl/do_j = - y*_j + exp(o_j) / sum_k exp(o_k)``,
that is ``dl/do = softmax(o) - y*`` (:func:`cross_entropy_grad`).

Computed naively, ``log(softmax(o))`` overflows (``exp(1000) = inf``) or takes
the log of an underflowed 0 at large logits. The stable form subtracts the
largest logit first, ``log_softmax(o) = o - m - log sum_k exp(o_k - m)`` with
``m = max_k o_k``, which changes nothing mathematically: every ``exp`` is then
at most 1 and the sum at least 1. ``stable=False`` keeps the naive form, for the
book to show it failing.

For comparison, :func:`sigmoid_l2` is the loss of the 1980s networks (a sigmoid
per output and a squared error), whose gradient carries a factor ``sigma'(o)``
that vanishes when an output saturates on the wrong side.

Reference: Goodfellow, Bengio and Courville, *Deep Learning* (2016), 6.2.2.
"""

from __future__ import annotations

import torch

__all__ = [
    "cross_entropy",
    "cross_entropy_grad",
    "log_softmax",
    "one_hot",
    "sigmoid_l2",
    "sigmoid_l2_grad",
    "smooth_labels",
    "softmax",
]

_REDUCTIONS = ("mean", "sum", "none")


def _check_logits(logits: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2:
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise ValueError(f"logits of shape {shape}: expected a 2-D tensor (batch, classes)")


def one_hot(target: torch.Tensor, n_classes: int, dtype: torch.dtype = torch.float32):
    """Class indices ``(batch,)`` to one-hot rows ``(batch, n_classes)``; probabilities pass through.

    A floating-point ``target`` of shape ``(batch, n_classes)`` is taken as a
    distribution already (soft labels) and returned as is.
    """
    if target.is_floating_point():
        if target.dim() != 2 or target.shape[1] != n_classes:
            raise ValueError(
                f"target of shape {tuple(target.shape)}: expected class indices (batch,) "
                f"or probabilities (batch, {n_classes})"
            )
        return target
    if target.dim() != 1:
        raise ValueError(f"target of shape {tuple(target.shape)}: expected class indices (batch,)")
    if len(target) and (target.min() < 0 or target.max() >= n_classes):
        raise ValueError(
            f"target holds classes {target.min().item()}..{target.max().item()}: "
            f"expected 0..{n_classes - 1}"
        )
    return torch.nn.functional.one_hot(target, n_classes).to(dtype)


def smooth_labels(
    target: torch.Tensor, n_classes: int, eps: float = 0.0, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """The target ``(1 - eps) y* + eps / n_classes`` (label smoothing, Szegedy et al., 2016).

    ``target`` is class indices ``(batch,)`` or soft labels ``(batch, n_classes)``
    (:func:`one_hot` reads both); ``eps = 0`` gives the one-hot rows themselves.
    """
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 <= eps < 1:
        raise ValueError(f"eps={eps!r}: expected a number in [0, 1)")
    y_star = one_hot(target, n_classes, dtype)
    return (1 - eps) * y_star + eps / n_classes if eps else y_star


def softmax(logits: torch.Tensor, stable: bool = True) -> torch.Tensor:
    """``exp(o_j) / sum_k exp(o_k)`` along the last axis; ``stable`` subtracts ``max_k o_k`` first."""
    _check_logits(logits)
    if stable:
        logits = logits - logits.max(dim=1, keepdim=True).values  # now every exp(.) <= 1
    e = torch.exp(logits)  # (batch, classes)
    return e / e.sum(dim=1, keepdim=True)


def log_softmax(logits: torch.Tensor, stable: bool = True) -> torch.Tensor:
    """``log softmax(o)``: ``o - m - log sum exp(o - m)`` if ``stable``, else ``log(softmax(o))``."""
    _check_logits(logits)
    if not stable:
        return torch.log(softmax(logits, stable=False))  # inf/inf = nan, or log(0) = -inf
    m = logits.max(dim=1, keepdim=True).values  # (batch, 1)
    shifted = logits - m
    return shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))


def _reduce(per_example: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_example.mean()
    if reduction == "sum":
        return per_example.sum()
    return per_example


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction={reduction!r}: expected one of {_REDUCTIONS}")


def cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean", stable: bool = True
) -> torch.Tensor:
    """``- sum_i y*_i log softmax(o)_i`` per example, then averaged (as ``F.cross_entropy``).

    ``target`` holds class indices ``(batch,)`` or probabilities ``(batch, classes)``.
    """
    _check_reduction(reduction)
    y_star = one_hot(target, logits.shape[1], logits.dtype)  # (batch, classes)
    per_example = -(y_star * log_softmax(logits, stable=stable)).sum(dim=1)  # (batch,)
    return _reduce(per_example, reduction)


def cross_entropy_grad(
    logits: torch.Tensor, target: torch.Tensor, reduction: str = "sum"
) -> torch.Tensor:
    """The lecture's answer, ``dl/do = softmax(o) - y*``, one row per example ``(batch, classes)``.

    Each example's loss depends on its own row of logits only, so the gradient
    of the summed loss (``reduction="sum"``, the default) is exactly
    ``softmax(o) - y*`` row by row; with ``reduction="mean"`` it is divided by
    the batch size, as for ``cross_entropy(..., reduction="mean")``.
    """
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction={reduction!r}: expected 'mean' or 'sum'")
    _check_logits(logits)
    grad = softmax(logits) - one_hot(target, logits.shape[1], logits.dtype)  # (batch, classes)
    return grad / len(logits) if reduction == "mean" else grad


def sigmoid_l2(logits: torch.Tensor, target: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """``1/2 sum_i (sigma(o_i) - y*_i)^2`` per example: a sigmoid per output and a squared error."""
    _check_reduction(reduction)
    _check_logits(logits)
    y_star = one_hot(target, logits.shape[1], logits.dtype)
    per_example = 0.5 * ((torch.sigmoid(logits) - y_star) ** 2).sum(dim=1)
    return _reduce(per_example, reduction)


def sigmoid_l2_grad(
    logits: torch.Tensor, target: torch.Tensor, reduction: str = "sum"
) -> torch.Tensor:
    """``(sigma(o) - y*) sigma'(o)``: small when an output saturates, even on the wrong side."""
    if reduction not in ("mean", "sum"):
        raise ValueError(f"reduction={reduction!r}: expected 'mean' or 'sum'")
    _check_logits(logits)
    s = torch.sigmoid(logits)
    grad = (s - one_hot(target, logits.shape[1], logits.dtype)) * s * (1 - s)  # sigma' = s(1 - s)
    return grad / len(logits) if reduction == "mean" else grad
