"""Two-dimensional loss surfaces, optimiser trajectories on them, and the theory of the quadratic.

The lecture's pictures of optimisation (an elongated bowl, a ravine, a saddle
point, Rosenbrock's banana) are functions of two parameters, small enough to
run any ``torch.optim`` optimiser on and draw its path. On a quadratic bowl the
convergence of gradient descent and momentum is known exactly; the helpers
below give the optimal step size and momentum and the rates they reach, and
:func:`empirical_rate` measures the rate of a run, so the two can be compared.

Sources: Polyak (1964) and Goh, "Why momentum really works", Distill (2017),
for the quadratic theory; Rosenbrock (1960); Dauphin et al. (2014) on saddle
points in high dimension.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "SURFACES",
    "Surface",
    "empirical_rate",
    "gd_optimal",
    "gd_rate",
    "gradient",
    "momentum_optimal",
    "momentum_rate",
    "momentum_rate_optimal",
    "nesterov_step",
    "quadratic",
    "rate_map",
    "ravine",
    "rosenbrock",
    "saddle",
    "stability_limit",
    "trajectory",
]


@dataclass(frozen=True)
class Surface:
    """A loss ``fn`` of two parameters, with what is needed to run on it and draw it.

    ``fn`` maps a tensor of shape ``(..., 2)`` to shape ``(...)``, so it takes a
    single point during optimisation and a whole grid for a contour plot.
    """

    name: str
    fn: Callable[[Tensor], Tensor]
    start: tuple[float, float]  # a starting point that shows the difficulty
    minimum: tuple[float, float]  # the global minimiser (one of them, for the saddle)
    extent: tuple[float, float, float, float]  # (xmin, xmax, ymin, ymax) to draw
    hessian: Tensor | None = None  # (2, 2), for the quadratics

    def __call__(self, x: Tensor) -> Tensor:
        return self.fn(x)

    def grid(self, n: int = 200) -> tuple[Tensor, Tensor, Tensor]:
        """``(X, Y, Z)`` on an ``n x n`` grid over ``extent``, for ``contour``."""
        x0, x1, y0, y1 = self.extent
        X, Y = torch.meshgrid(
            torch.linspace(x0, x1, n, dtype=torch.float64),
            torch.linspace(y0, y1, n, dtype=torch.float64),
            indexing="xy",
        )
        return X, Y, self.fn(torch.stack([X, Y], dim=-1))

    def __repr__(self) -> str:
        return f"Surface({self.name!r}, start={self.start}, minimum={self.minimum})"


def quadratic(mu: float = 1.0, L: float = 100.0, angle: float = 0.0) -> Surface:
    """The bowl ``f(x) = 1/2 x^T A x`` whose Hessian ``A`` has eigenvalues ``mu <= L``.

    The condition number ``kappa = L / mu`` sets how elongated the level sets are:
    the gradient points to the minimum only when ``kappa = 1`` (a circle).
    ``angle`` (radians) rotates the axes of the ellipses.
    """
    if not 0 < mu <= L:
        raise ValueError(f"mu={mu!r}, L={L!r}: expected 0 < mu <= L")
    c, s = math.cos(angle), math.sin(angle)
    Q = torch.tensor([[c, -s], [s, c]], dtype=torch.float64)
    A = Q @ torch.diag(torch.tensor([mu, L], dtype=torch.float64)) @ Q.T  # (2, 2)

    def fn(x: Tensor) -> Tensor:
        Ax = x @ A.to(x.dtype)  # (..., 2); A is symmetric
        return 0.5 * (x * Ax).sum(-1)

    # Start where both eigen-directions hold the same loss, mu / 2: (-1, sqrt(mu / L)) in the
    # eigenbasis. Draw the ellipse 1.5 times that loss: its bounding box has half-widths
    # sqrt(2 c (A^-1)_ii).
    start = Q @ torch.tensor([-1.0, math.sqrt(mu / L)], dtype=torch.float64)
    half = (2 * 1.5 * mu * torch.linalg.inv(A).diagonal()).sqrt()
    extent = (-half[0].item(), half[0].item(), -half[1].item(), half[1].item())
    return Surface(
        f"quadratic (kappa={L / mu:g})", fn, tuple(start.tolist()), (0.0, 0.0), extent, A
    )


def _ravine(x: Tensor) -> Tensor:
    # Along x a gentle slope of 0.1 ("faible et stable"); across, steep walls 5 y^2.
    return 0.1 * torch.sqrt(1 + x[..., 0] ** 2) + 5 * x[..., 1] ** 2


def _saddle(x: Tensor) -> Tensor:
    # A saddle at (0, 0) (gradient zero, curvature +1 along x, -1 along y) between
    # two minima at (0, +-1), where f = -1/4.
    return 0.5 * x[..., 0] ** 2 - 0.5 * x[..., 1] ** 2 + 0.25 * x[..., 1] ** 4


def _rosenbrock(x: Tensor) -> Tensor:
    return (1 - x[..., 0]) ** 2 + 100 * (x[..., 1] - x[..., 0] ** 2) ** 2


ravine = Surface("ravine", _ravine, (-8.0, 1.0), (0.0, 0.0), (-9.0, 9.0, -1.5, 1.5))
saddle = Surface("saddle", _saddle, (1.5, 1e-3), (0.0, 1.0), (-1.7, 1.7, -1.5, 1.5))
rosenbrock = Surface("Rosenbrock", _rosenbrock, (-1.2, 1.0), (1.0, 1.0), (-1.6, 1.6, -0.6, 1.8))

SURFACES: dict[str, Surface] = {
    "quadratic": quadratic(),
    "ravine": ravine,
    "saddle": saddle,
    "rosenbrock": rosenbrock,
}


def trajectory(
    fn: Callable[[Tensor], Tensor],
    optimizer_factory: Callable[[list[Tensor]], torch.optim.Optimizer],
    start: Sequence[float],
    steps: int,
) -> Tensor:
    """Run an optimiser on ``fn`` from ``start``; return the path, shape ``(steps + 1, 2)``.

    ``optimizer_factory([x])`` builds the optimiser, e.g. ``lambda p: Adam(p, lr=0.1)``.
    Each step goes through a closure, so ``torch.optim.LBFGS`` works too (one
    of its steps evaluates ``fn`` several times). Computed in float64. Once the
    point or the loss is no longer finite, the rest of the path is NaN.
    """
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps={steps!r}: expected a non-negative integer")
    x = torch.tensor(start, dtype=torch.float64).requires_grad_()
    if x.shape != (2,):
        raise ValueError(f"start={start!r}: expected two coordinates")
    optimizer = optimizer_factory([x])

    def closure():
        optimizer.zero_grad()
        loss = fn(x)
        loss.backward()
        return loss

    path = torch.full((steps + 1, 2), math.nan, dtype=torch.float64)
    path[0] = x.detach()
    for k in range(1, steps + 1):
        loss = optimizer.step(closure)
        if not (torch.isfinite(loss) and torch.isfinite(x).all()):
            break  # diverged: leave NaN
        path[k] = x.detach()
    return path


# ---------------------------------------------------------------------------
# Theory on a quadratic with Hessian eigenvalues in [mu, L], kappa = L / mu.
# Rates are per step, for the distance to the minimum: ||x_k|| ~ rate**k.
# ---------------------------------------------------------------------------


def gd_optimal(mu: float, L: float) -> float:
    """The step size ``2 / (mu + L)`` that makes gradient descent fastest."""
    return 2.0 / (mu + L)


def gd_rate(mu: float, L: float) -> float:
    """The rate of gradient descent at its optimal step: ``(kappa - 1) / (kappa + 1)``."""
    kappa = L / mu
    return (kappa - 1) / (kappa + 1)


def momentum_optimal(mu: float, L: float) -> tuple[float, float]:
    """Polyak's optimal ``(lr, momentum)``: ``4 / (sqrt(L) + sqrt(mu))**2`` and ``rate**2``."""
    lr = 4.0 / (math.sqrt(L) + math.sqrt(mu)) ** 2
    return lr, momentum_rate_optimal(mu, L) ** 2


def momentum_rate_optimal(mu: float, L: float) -> float:
    """The rate of momentum at its optimal setting: ``(sqrt(kappa) - 1) / (sqrt(kappa) + 1)``."""
    root = math.sqrt(L / mu)
    return (root - 1) / (root + 1)


def momentum_rate(
    lr: float, momentum: float, eigenvalues: Iterable[float], nesterov: bool = False
) -> float:
    """The exact asymptotic rate of (Nesterov) momentum with any ``lr`` and ``momentum``.

    Along an eigenvector of eigenvalue ``lam`` the iterates obey a linear
    recurrence of order two (the velocity is the second state); the rate is the
    largest modulus of its characteristic roots, over all eigenvalues. Above 1
    the run diverges. ``momentum=0`` gives gradient descent, ``max |1 - lr lam|``.
    """
    worst = 0.0
    for lam in eigenvalues:
        a = 1 - lr * lam
        if nesterov:  # x+ = a ((1 + m) x - m x-)
            T = torch.tensor([[a * (1 + momentum), -a * momentum], [1.0, 0.0]], dtype=torch.float64)
        else:  # heavy ball: x+ = (1 + m - lr lam) x - m x-
            T = torch.tensor([[a + momentum, -momentum], [1.0, 0.0]], dtype=torch.float64)
        worst = max(worst, torch.linalg.eigvals(T).abs().max().item())
    return worst


def rate_map(
    lrs: Sequence[float], momenta: Sequence[float], eigenvalues: Sequence[float], nesterov=False
) -> Tensor:
    """:func:`momentum_rate` on a grid: shape ``(len(momenta), len(lrs))``, for ``pcolormesh``."""
    eig = list(eigenvalues)
    return torch.tensor([[momentum_rate(lr, m, eig, nesterov) for lr in lrs] for m in momenta])


def stability_limit(L: float, momentum: float = 0.0, nesterov: bool = False) -> float:
    """The largest stable step size when the largest Hessian eigenvalue is ``L``.

    ``2 (1 + alpha) / L`` for heavy-ball momentum (``2 / L`` without momentum)
    and ``2 (1 + alpha) / ((1 + 2 alpha) L)`` for Nesterov: where a root of the
    recurrence of :func:`momentum_rate` reaches -1.
    """
    limit = 2 * (1 + momentum) / L
    return limit / (1 + 2 * momentum) if nesterov else limit


def empirical_rate(errors: Sequence[float] | Tensor, start: int | None = None) -> float:
    """The rate ``r`` of ``errors[k] ~ C r**k``, fitted by least squares on ``log errors[k]``.

    ``errors`` are distances to the minimum (or losses) along a run. The fit
    uses the steps from ``start`` (default: half-way, past the transient) on,
    and stops before the errors reach float64's floor (1e-250) or stop being
    finite. Oscillations (momentum) average out in the fit.
    """
    e = torch.as_tensor(errors, dtype=torch.float64).flatten()
    k = torch.arange(len(e), dtype=torch.float64)
    start = len(e) // 2 if start is None else start
    keep = (k >= start) & torch.isfinite(e) & (e > 1e-250)
    if keep.sum() < 2:
        raise ValueError(
            f"errors has {int(keep.sum())} usable values after start={start}: expected at least 2 "
            "finite values above 1e-250"
        )
    k, log_e = k[keep], e[keep].log()
    slope = ((k - k.mean()) * (log_e - log_e.mean())).sum() / ((k - k.mean()) ** 2).sum()
    return math.exp(slope.item())


def gradient(fn: Callable[[Tensor], Tensor], point: Tensor) -> Tensor:
    """The gradient of ``fn`` at ``point`` (shape ``(2,)``), by autograd."""
    point = point.detach().clone().requires_grad_()
    fn(point).backward()
    return point.grad


def nesterov_step(
    fn: Callable[[Tensor], Tensor], theta: Tensor, v: Tensor, lr: float, momentum: float
) -> tuple[Tensor, Tensor, Tensor]:
    """One step from ``theta`` with velocity ``v``, in the lecture's notation.

    Returns the look-ahead point ``theta + alpha v``, the momentum step
    ``theta + alpha v - rho grad f(theta)`` and the Nesterov step
    ``theta + alpha v - rho grad f(theta + alpha v)``.
    """
    ahead = theta + momentum * v
    return ahead, ahead - lr * gradient(fn, theta), ahead - lr * gradient(fn, ahead)
