"""2-D surfaces, trajectories and the quadratic theory, checked by autograd and by measurement."""

import math

import pytest
import torch
from torch.autograd.functional import hessian

from mla_course import optim, plots
from mla_course import surfaces as S


def _grad(fn, point):
    x = torch.tensor(point, dtype=torch.float64, requires_grad=True)
    fn(x).backward()
    return x.grad


@pytest.mark.parametrize("surface", list(S.SURFACES.values()), ids=list(S.SURFACES))
def test_minimum_is_a_stationary_point_with_positive_curvature(surface):
    m = torch.tensor(surface.minimum, dtype=torch.float64)
    torch.testing.assert_close(_grad(surface, surface.minimum), torch.zeros(2, dtype=torch.float64))
    assert (torch.linalg.eigvalsh(hessian(surface.fn, m)) > 0).all()
    X, Y, Z = surface.grid(50)
    assert X.shape == Y.shape == Z.shape == (50, 50)
    assert Z.min() >= surface(m) - 1e-12  # nothing on the grid below the minimum


def test_saddle_has_zero_gradient_and_curvatures_of_both_signs():
    origin = torch.zeros(2, dtype=torch.float64)
    torch.testing.assert_close(_grad(S.saddle, (0.0, 0.0)), origin)
    eig = torch.linalg.eigvalsh(hessian(S.saddle.fn, origin))
    torch.testing.assert_close(eig, torch.tensor([-1.0, 1.0], dtype=torch.float64))


def test_quadratic_hessian_is_the_one_declared():
    q = S.quadratic(2.0, 30.0, angle=0.4)
    H = hessian(q.fn, torch.tensor(q.start, dtype=torch.float64))
    torch.testing.assert_close(H, q.hessian)
    torch.testing.assert_close(
        torch.linalg.eigvalsh(H), torch.tensor([2.0, 30.0], dtype=torch.float64)
    )
    with pytest.raises(ValueError, match=r"mu=5.*L=1"):
        S.quadratic(5.0, 1.0)


@pytest.mark.parametrize("kappa", [10.0, 100.0])
def test_measured_rates_match_theory_at_the_optimal_settings(kappa):
    q = S.quadratic(1.0, kappa, angle=0.3)
    lr = S.gd_optimal(1.0, kappa)
    path = S.trajectory(q, lambda p: optim.SGD(p, lr=lr), q.start, 200)
    assert S.empirical_rate(path.norm(dim=1)) == pytest.approx(S.gd_rate(1.0, kappa), rel=1e-3)

    lr, m = S.momentum_optimal(1.0, kappa)
    path = S.trajectory(q, lambda p: optim.Momentum(p, lr=lr, momentum=m), q.start, 200)
    measured = S.empirical_rate(path.norm(dim=1))
    theory = S.momentum_rate_optimal(1.0, kappa)
    assert theory == pytest.approx((math.sqrt(kappa) - 1) / (math.sqrt(kappa) + 1))
    # At the optimum the two roots coincide, so the error goes as k * rate**k: a little slower.
    assert theory <= measured <= theory * 1.02
    assert measured < S.gd_rate(1.0, kappa)  # momentum is faster


@pytest.mark.parametrize(
    ("cls", "lr", "m", "nesterov"),
    [
        (optim.Momentum, 0.015, 0.5, False),
        (optim.Momentum, 0.005, 0.95, False),
        (optim.Nesterov, 0.01, 0.8, True),
        (optim.SGD, 0.012, 0.0, False),
    ],
)
def test_momentum_rate_predicts_any_setting(cls, lr, m, nesterov):
    q = S.quadratic(1.0, 100.0)
    kwargs = {"lr": lr} if cls is optim.SGD else {"lr": lr, "momentum": m}
    path = S.trajectory(q, lambda p: cls(p, **kwargs), q.start, 600)
    expected = S.momentum_rate(lr, m, [1.0, 100.0], nesterov=nesterov)
    assert S.empirical_rate(path.norm(dim=1)) == pytest.approx(expected, rel=5e-3)


def test_momentum_rate_without_momentum_is_gradient_descent():
    eig = [0.5, 3.0, 20.0]
    for lr in (0.01, 0.05, 0.11):
        assert S.momentum_rate(lr, 0.0, eig) == pytest.approx(max(abs(1 - lr * e) for e in eig))


def test_rate_above_one_means_divergence_and_nan_path():
    q = S.quadratic(1.0, 100.0)
    assert S.momentum_rate(0.025, 0.0, [1.0, 100.0]) > 1
    path = S.trajectory(q, lambda p: optim.SGD(p, lr=0.025), q.start, 2000)
    assert torch.isnan(path[-1]).all()
    assert torch.isfinite(path[0]).all()


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (
            lambda p: optim.Momentum(p, lr=1e-3, momentum=0.9),
            lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9),
        ),
        (
            lambda p: optim.Nesterov(p, lr=1e-3, momentum=0.9),
            lambda p: torch.optim.SGD(p, lr=1e-3, momentum=0.9, nesterov=True),
        ),
        (lambda p: optim.Adam(p, lr=0.05), lambda p: torch.optim.Adam(p, lr=0.05)),
        (lambda p: optim.RMSProp(p, lr=0.01), lambda p: torch.optim.RMSprop(p, lr=0.01)),
        (lambda p: optim.AdaGrad(p, lr=0.3), lambda p: torch.optim.Adagrad(p, lr=0.3)),
    ],
)
def test_trajectory_is_the_same_with_torch_optim(ours, theirs):
    r = S.rosenbrock
    a = S.trajectory(r, ours, r.start, 100)
    b = S.trajectory(r, theirs, r.start, 100)
    assert a.shape == (101, 2)
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_trajectory_accepts_lbfgs():
    q = S.quadratic(1.0, 100.0)
    path = S.trajectory(q, lambda p: torch.optim.LBFGS(p, lr=1.0), q.start, 2)
    assert path[-1].norm() < 1e-6  # a quadratic in 2-D: solved in a couple of steps


def test_empirical_rate_recovers_a_geometric_sequence_and_checks_input():
    k = torch.arange(100, dtype=torch.float64)
    noisy = 3.0 * 0.9**k * (1 + 0.5 * torch.cos(2.0 * k) ** 2)  # bounded oscillation
    assert S.empirical_rate(0.7**k) == pytest.approx(0.7)
    assert S.empirical_rate(noisy) == pytest.approx(0.9, rel=2e-3)
    with pytest.raises(ValueError, match="usable values"):
        S.empirical_rate([1.0, math.nan, math.nan, math.nan])
    with pytest.raises(ValueError, match="steps=-1"):
        S.trajectory(S.saddle, lambda p: optim.SGD(p, lr=0.1), S.saddle.start, -1)


def test_draw_returns_the_axes():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = S.trajectory(S.ravine, lambda p: optim.Adam(p, lr=0.1), S.ravine.start, 20)
    ax = plots.draw_surface(S.ravine, {"Adam": path})
    assert len(ax.lines) == 2  # the minimum and the path
    plt.close(ax.figure)


@pytest.mark.parametrize("nesterov", [False, True])
@pytest.mark.parametrize("momentum", [0.0, 0.5, 0.9])
def test_stability_limit_is_where_the_rate_crosses_one(momentum, nesterov):
    limit = S.stability_limit(100.0, momentum, nesterov)
    assert S.momentum_rate(limit * 0.99, momentum, [1.0, 100.0], nesterov) < 1
    assert S.momentum_rate(limit * 1.01, momentum, [1.0, 100.0], nesterov) > 1
    rates = S.rate_map([limit * 0.99, limit * 1.01], [momentum], [1.0, 100.0], nesterov)
    assert rates.shape == (1, 2)
    assert rates[0, 0] < 1 < rates[0, 1]


def test_nesterov_step_matches_the_optimisers():
    # From rest, one Momentum step sets v; the next step of each optimiser must land on
    # the points nesterov_step draws (Nesterov's parameters are the look-ahead point).
    q = S.quadratic(1.0, 10.0, angle=0.3)
    lr, m = 0.05, 0.8
    path = S.trajectory(q, lambda p: optim.Momentum(p, lr, momentum=m), q.start, 2)
    theta, v = path[1], path[1] - path[0]
    ahead, new_momentum, new_nesterov = S.nesterov_step(q, theta, v, lr, m)
    torch.testing.assert_close(ahead, theta + m * v)
    torch.testing.assert_close(new_momentum, path[2])
    # Lecture form: v' = m v - lr grad(theta + m v); theta' = theta + v'.
    v_new = m * v - lr * S.gradient(q, theta + m * v)
    torch.testing.assert_close(new_nesterov, theta + m * v - lr * S.gradient(q, ahead))
    torch.testing.assert_close(new_nesterov, theta + v_new)
