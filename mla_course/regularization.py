"""Regularisation: batch transforms, norm penalties and early stopping, for :func:`~mla_course.train.fit`.

Batch transforms take a mini-batch and return a changed one,
``transform(x, y) -> (x, y_or_soft_labels)``, and go to ``fit(..., transform=...)``.
Images may come flat, ``(batch, 784)``, or as ``(batch, 1, 28, 28)``; each
transform returns the shape it was given. Every transform draws its random
numbers from its own ``torch.Generator`` (seeded 0 unless one is passed), so a
run is repeatable.

========================  ==================================  =======================
transform                 what it does to ``x``               labels
========================  ==================================  =======================
:class:`ShiftRotate`      small random shift and rotation     unchanged
:class:`GaussianNoise`    adds Gaussian noise                 unchanged
:class:`Cutout`           blanks a random square              unchanged
:class:`Mixup`            convex mix of two images            mixed in the same ratio
:class:`CutMix`           pastes a box of another image       mixed by area
========================  ==================================  =======================

:func:`l1_penalty` and :func:`l2_penalty` build the term :math:`\\alpha\\,\\Omega(\\theta)`
added to the loss (``fit(..., penalty=...)``). :class:`EarlyStopping` goes to
``fit(..., on_epoch_end=...)``.

References
----------
I. Goodfellow, Y. Bengio and A. Courville, *Deep Learning*, MIT Press 2016, chapter 7.
H. Zhang, M. Cisse, Y. Dauphin and D. Lopez-Paz, "mixup: Beyond Empirical Risk
Minimization", ICLR 2018.
T. DeVries and G. Taylor, "Improved Regularization of Convolutional Neural
Networks with Cutout", arXiv:1708.04552, 2017.
S. Yun, D. Han, S. J. Oh, S. Chun, J. Choe and Y. Yoo, "CutMix: Regularization
Strategy to Train Strong Classifiers with Localizable Features", ICCV 2019.
L. Prechelt, "Early Stopping - But When?", in *Neural Networks: Tricks of the Trade*, 1998.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .losses import smooth_labels

__all__ = [
    "TRANSFORMS",
    "CutMix",
    "Cutout",
    "EarlyStopping",
    "GaussianNoise",
    "Mixup",
    "ShiftRotate",
    "l1_norm",
    "l1_penalty",
    "l2_penalty",
    "shift_rotate",
]


# ------------------------------------------------------------------------------ helpers
def _as_images(x: torch.Tensor) -> torch.Tensor:
    """View a batch as ``(batch, 1, side, side)`` images, whatever shape it came in."""
    if x.dim() == 4:
        return x
    if x.dim() == 3:  # (batch, side, side)
        return x.unsqueeze(1)
    if x.dim() == 2:  # (batch, side * side)
        side = math.isqrt(x.shape[1])
        if side * side != x.shape[1]:
            raise ValueError(
                f"x of shape {tuple(x.shape)}: a flat batch needs a square number of pixels "
                f"(784 for 28x28 images)"
            )
        return x.reshape(len(x), 1, side, side)
    raise ValueError(
        f"x of shape {tuple(x.shape)}: expected (batch, pixels), (batch, H, W) or (batch, C, H, W)"
    )


def _generator(generator: torch.Generator | None) -> torch.Generator:
    if generator is None:
        return torch.Generator().manual_seed(0)
    if not isinstance(generator, torch.Generator):
        raise TypeError(f"generator={generator!r}: expected a torch.Generator or None")
    return generator


def _check(name: str, value, low: float, high: float = math.inf, *, open_low=False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    ok = ok and (value > low if open_low else value >= low) and value <= high
    if not ok:
        bracket = "(" if open_low else "["
        raise ValueError(f"{name}={value!r}: expected a number in {bracket}{low}, {high}]")


def _beta(alpha: float, generator: torch.Generator) -> float:
    # torch's Beta sampler takes no generator: seed NumPy's from ours, so the run stays repeatable.
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


class _Transform:
    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._args().items())
        return f"{type(self).__name__}({args})"

    def _args(self) -> dict:
        return {}


# ---------------------------------------------------------------------- augmentations
def shift_rotate(
    x: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, degrees: torch.Tensor
) -> torch.Tensor:
    """Move each image by ``(dx, dy)`` pixels (right, down) and rotate it by ``degrees``.

    ``dx``, ``dy`` and ``degrees`` have shape ``(batch,)``; the rotation is about
    the image centre, counter-clockwise on screen. Bilinear interpolation;
    pixels that come from outside the image copy the border (the background on
    MNIST). Returns the shape ``x`` came in.
    """
    images = _as_images(x)  # (batch, C, H, W)
    _, _, h, w = images.shape
    angle = torch.deg2rad(degrees.to(images))
    cos, sin = torch.cos(angle), torch.sin(angle)
    # affine_grid maps each output pixel to where it reads the input, in coordinates
    # where the image spans [-1, 1] (a pixel is 2 / size): read at R^-1 (p - shift).
    tx, ty = -dx.to(images) * 2 / w, -dy.to(images) * 2 / h
    theta = torch.stack(
        [
            torch.stack([cos, -sin, cos * tx - sin * ty], 1),
            torch.stack([sin, cos, sin * tx + cos * ty], 1),
        ],
        1,
    )  # (batch, 2, 3)
    grid = F.affine_grid(theta, list(images.shape), align_corners=False)
    out = F.grid_sample(images, grid, padding_mode="border", align_corners=False)
    return out.reshape(x.shape)


class ShiftRotate(_Transform):
    """Shift each image by up to ``max_shift`` pixels and rotate it by up to ``max_degrees``.

    Each image gets its own shift (uniform in ``[-max_shift, max_shift]`` along
    each axis) and angle (uniform in ``[-max_degrees, max_degrees]``); see
    :func:`shift_rotate`.
    """

    def __init__(self, max_shift: float = 2.0, max_degrees: float = 15.0, generator=None):
        _check("max_shift", max_shift, 0.0)
        _check("max_degrees", max_degrees, 0.0, 180.0)
        self.max_shift, self.max_degrees = max_shift, max_degrees
        self.generator = _generator(generator)

    def _args(self) -> dict:
        return {"max_shift": self.max_shift, "max_degrees": self.max_degrees}

    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        u = torch.rand(3, len(x), generator=self.generator) * 2 - 1  # (3, batch) in [-1, 1]
        shift, degrees = u[:2] * self.max_shift, u[2] * self.max_degrees
        return shift_rotate(x, shift[0], shift[1], degrees), y


class GaussianNoise(_Transform):
    """Add Gaussian noise of standard deviation ``std`` to every input value (noise injection)."""

    def __init__(self, std: float = 0.5, generator=None):
        _check("std", std, 0.0)
        self.std, self.generator = std, _generator(generator)

    def _args(self) -> dict:
        return {"std": self.std}

    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        noise = torch.randn(x.shape, generator=self.generator).to(x)
        return x + self.std * noise, y


class Cutout(_Transform):
    """Blank a ``size`` x ``size`` square at a random place in each image (DeVries and Taylor).

    The centre is uniform over the image and the square is clipped at the
    borders, as in the paper. It is filled with ``fill``; 0 is the mean pixel of
    normalised data, the paper's choice.
    """

    def __init__(self, size: int = 10, fill: float = 0.0, generator=None):
        if not isinstance(size, int) or isinstance(size, bool) or size <= 0:
            raise ValueError(f"size={size!r}: expected a positive integer (pixels)")
        self.size, self.fill, self.generator = size, fill, _generator(generator)

    def _args(self) -> dict:
        return {"size": self.size, "fill": self.fill}

    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        images = _as_images(x).clone()  # (batch, C, H, W)
        n, _, h, w = images.shape
        cy = torch.randint(0, h, (n,), generator=self.generator)
        cx = torch.randint(0, w, (n,), generator=self.generator)
        rows = torch.arange(h).reshape(1, h, 1)
        cols = torch.arange(w).reshape(1, 1, w)
        half = self.size // 2
        inside = (
            (rows >= (cy - half).reshape(n, 1, 1))
            & (rows < (cy - half + self.size).reshape(n, 1, 1))
            & (cols >= (cx - half).reshape(n, 1, 1))
            & (cols < (cx - half + self.size).reshape(n, 1, 1))
        )  # (batch, H, W)
        images[inside.unsqueeze(1).expand_as(images).to(images.device)] = self.fill
        return images.reshape(x.shape), y


class _Mix(_Transform):
    """What :class:`Mixup` and :class:`CutMix` share: the checks, the draws, the repr.

    A weight ``lam`` drawn from Beta(``alpha``, ``alpha``) once per batch, a
    random partner for each example, and soft labels over ``num_classes``.
    """

    def __init__(self, alpha: float, num_classes: int, generator):
        _check("alpha", alpha, 0.0, open_low=True)
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes={num_classes!r}: expected an integer >= 2")
        self.alpha, self.num_classes = alpha, num_classes
        self.generator = _generator(generator)

    def _args(self) -> dict:
        return {"alpha": self.alpha, "num_classes": self.num_classes}

    def _draw(self, x: torch.Tensor) -> tuple[float, torch.Tensor]:
        """The mixing weight and the partners, a permutation of the batch ``(batch,)``."""
        lam = _beta(self.alpha, self.generator)
        return lam, torch.randperm(len(x), generator=self.generator).to(x.device)


class Mixup(_Mix):
    """Mix each example with another of the batch: ``lam * (x_i, y_i) + (1 - lam) * (x_j, y_j)``.

    ``lam`` is drawn once per batch from Beta(``alpha``, ``alpha``) and ``j`` is a
    random permutation of the batch (Zhang et al., 2018). Returns soft labels of
    shape ``(batch, num_classes)`` that sum to 1, which ``F.cross_entropy`` accepts.
    """

    def __init__(self, alpha: float = 0.2, num_classes: int = 10, generator=None):
        super().__init__(alpha, num_classes, generator)

    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        lam, perm = self._draw(x)
        soft = smooth_labels(y, self.num_classes)  # (batch, classes)
        return lam * x + (1 - lam) * x[perm], lam * soft + (1 - lam) * soft[perm]


class CutMix(_Mix):
    """Paste a random box of another image of the batch; labels mix by area (Yun et al., 2019).

    ``lam`` is drawn from Beta(``alpha``, ``alpha``); the box covers a share
    ``1 - lam`` of the image (sides ``sqrt(1 - lam)`` times the image's), its
    centre is uniform and it is clipped at the borders. The label weight of the
    pasted image is then the exact share of pixels it covers.
    """

    def __init__(self, alpha: float = 1.0, num_classes: int = 10, generator=None):
        super().__init__(alpha, num_classes, generator)

    def __call__(self, x: torch.Tensor, y: torch.Tensor):
        images = _as_images(x).clone()  # (batch, C, H, W)
        _, _, h, w = images.shape
        lam, perm = self._draw(x)
        cut_h, cut_w = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
        cy = int(torch.randint(0, h, (1,), generator=self.generator))  # box centre
        cx = int(torch.randint(0, w, (1,), generator=self.generator))
        top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h - cut_h // 2, h)
        left, right = max(cx - cut_w // 2, 0), min(cx + cut_w - cut_w // 2, w)
        images[:, :, top:bottom, left:right] = images[perm][:, :, top:bottom, left:right]
        pasted = (bottom - top) * (right - left) / (h * w)  # share of the other image
        soft = smooth_labels(y, self.num_classes)  # (batch, classes)
        return images.reshape(x.shape), (1 - pasted) * soft + pasted * soft[perm]


# --------------------------------------------------------------------------- penalties
class _NormPenalty:
    """``alpha * Omega(weights)``, a callable of the model for ``fit(..., penalty=...)``."""

    def __init__(self, name: str, alpha: float):
        _check("alpha", alpha, 0.0)
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


def l2_penalty(model: nn.Module | None = None, alpha: float = 1e-4) -> _NormPenalty:
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
    return _NormPenalty("l2", alpha)


def l1_norm(weights, *, stacked: bool = False) -> torch.Tensor:
    """``Omega(theta) = sum(|w|)`` over the weight tensors ``weights``: the L1 penalty's norm.

    ``stacked=True`` reads each tensor as ``M`` networks stacked along its first
    axis (the weights of :class:`mla_course.engine.StackedMLP`, ``(M, n_in,
    n_out)``) and returns the ``M`` norms, one per network, shape ``(M,)``.
    """
    if stacked:
        return sum(w.abs().flatten(1).sum(1) for w in weights)
    return sum(w.abs().sum() for w in weights)


def l1_penalty(model: nn.Module | None = None, alpha: float = 1e-4) -> _NormPenalty:
    """The L1 penalty (LASSO): ``alpha * sum(|w|)`` over the weights, which favours exact zeros.

    As for :func:`l2_penalty`, biases are left out and ``model`` is only checked.
    """
    if model is not None:
        _weights(model)
    return _NormPenalty("l1", alpha)


# ----------------------------------------------------------------------- early stopping
class EarlyStopping:
    """Stop when ``monitor`` has not improved for ``patience`` epochs and restore the best weights.

    Use as ``fit(..., on_epoch_end=EarlyStopping(patience=3))``. After each epoch
    it reads the last value of ``history.<monitor>`` and keeps a copy of the
    weights if it is the best so far (lower for a loss, higher for an accuracy,
    by at least ``min_delta``). When it stops training it loads the best
    weights back into the model; if training ends first, call
    :meth:`restore`. It resets itself at the first epoch of a new run.

    ``fit`` calls its second split ``test``: to keep the test set untouched,
    pass a validation split there while tuning (Prechelt, 1998).
    """

    def __init__(self, patience: int = 5, monitor: str = "test_loss", min_delta: float = 0.0):
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 1:
            raise ValueError(f"patience={patience!r}: expected a positive integer (epochs)")
        allowed = ("test_loss", "test_acc", "train_loss", "train_acc")
        if monitor not in allowed:
            raise ValueError(f"monitor={monitor!r}: expected one of {list(allowed)}")
        _check("min_delta", min_delta, 0.0)
        self.patience, self.monitor, self.min_delta = patience, monitor, min_delta
        self.sign = 1.0 if monitor.endswith("loss") else -1.0  # minimise sign * value
        self.reset()

    def reset(self) -> None:
        self.best_value: float = math.inf
        self.best_epoch: int | None = None  # 1-based
        self.best_state: dict | None = None
        self.stopped_epoch: int | None = None
        self._wait = 0

    def __call__(self, history, model: nn.Module) -> bool:
        epoch = len(getattr(history, self.monitor))
        if epoch == 1:
            self.reset()
        value = self.sign * getattr(history, self.monitor)[-1]
        if value < self.best_value - self.min_delta:
            self.best_value, self.best_epoch, self._wait = value, epoch, 0
            self.best_state = copy.deepcopy(model.state_dict())
            return False
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_epoch = epoch
            self.restore(model)
            return True
        return False

    def restore(self, model: nn.Module) -> nn.Module:
        """Load the best weights seen into ``model`` and return it."""
        if self.best_state is None:
            raise RuntimeError("EarlyStopping.restore: no epoch has been seen yet")
        model.load_state_dict(self.best_state)
        return model

    def __repr__(self) -> str:
        best = None if self.best_epoch is None else self.sign * self.best_value
        return (
            f"EarlyStopping(patience={self.patience}, monitor={self.monitor!r}, "
            f"best_epoch={self.best_epoch}, best={best}, stopped_epoch={self.stopped_epoch})"
        )


# name -> batch transform class: the names accepted by ``Config.augment`` (mla_course.config).
TRANSFORMS: dict[str, type[_Transform]] = {
    "shift_rotate": ShiftRotate,
    "noise": GaussianNoise,
    "cutout": Cutout,
    "mixup": Mixup,
    "cutmix": CutMix,
}
