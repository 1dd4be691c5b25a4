"""Data augmentation: batch transforms for ``fit(..., transform=...)`` (:func:`~mla_course.train.fit`).

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

References
----------
H. Zhang, M. Cisse, Y. Dauphin and D. Lopez-Paz, "mixup: Beyond Empirical Risk
Minimization", ICLR 2018.
T. DeVries and G. Taylor, "Improved Regularization of Convolutional Neural
Networks with Cutout", arXiv:1708.04552, 2017.
S. Yun, D. Han, S. J. Oh, S. Chun, J. Choe and Y. Yoo, "CutMix: Regularization
Strategy to Train Strong Classifiers with Localizable Features", ICCV 2019.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from .losses import smooth_labels

__all__ = [
    "TRANSFORMS",
    "CutMix",
    "Cutout",
    "GaussianNoise",
    "Mixup",
    "ShiftRotate",
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


# name -> batch transform class: the names accepted by ``Config.augment`` (mla_course.config).
TRANSFORMS: dict[str, type[_Transform]] = {
    "shift_rotate": ShiftRotate,
    "noise": GaussianNoise,
    "cutout": Cutout,
    "mixup": Mixup,
    "cutmix": CutMix,
}
