"""Identities behind the optimisation pages (gallery/02_optimisation), as tests.

The pages print these numbers; they are not claims of the book, because they cannot
come out otherwise: a sampling formula checked by Monte Carlo, the closed-form rates of
the quadratic theory, the algebra of one step of an adaptive method, the algebra of
Adam's bias correction on one stream of gradients, Newton's step on a quadratic, and
the plumbing of the comparison page (the test runs are the tuning runs). Each test
re-creates the page's small computation with the package.
"""

import math
from functools import partial

import pytest
import torch
import torch.nn.functional as F

from mla_course import optim
from mla_course import surfaces as S
from mla_course.config import Config
from mla_course.runs import sweep

# ------------------------------------------------------------------ plot_06: mini-batches


@pytest.fixture(scope="module")
def per_example_gradients():
    """A small network's gradient on each of n random examples: (n, parameters)."""
    g = torch.Generator().manual_seed(0)
    n = 300
    X, y = torch.randn(n, 20, generator=g), torch.randint(0, 5, (n,), generator=g)
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(20, 16), torch.nn.Sigmoid(), torch.nn.Linear(16, 5))

    def gradient(idx):
        model.zero_grad()
        F.cross_entropy(model(X[idx]), y[idx]).backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    return gradient, n


def _draws(gradient, n, B, count, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.stack([gradient(torch.randperm(n, generator=g)[:B]) for _ in range(count)])


def test_minibatch_gradient_error_follows_the_sampling_formula(per_example_gradients):
    """E|g_B - g|^2 = sigma^2 / B (n - B) / (n - 1), sigma^2 the mean of |g_i - g|^2."""
    gradient, n = per_example_gradients
    full = gradient(torch.arange(n))
    single = torch.stack([gradient(torch.tensor([i])) for i in range(n)])
    torch.testing.assert_close(single.mean(0), full, rtol=1e-4, atol=1e-6)  # unbiased
    sigma2 = ((single - full) ** 2).sum(1).mean().item()
    cosines = []
    for B in (4, 16, 64, 150):
        G = _draws(gradient, n, B, 400, seed=B)
        error = ((G - full) ** 2).sum(1).mean().item()
        assert error == pytest.approx(sigma2 / B * (n - B) / (n - 1), rel=0.15)
        cosines.append(F.cosine_similarity(G, full[None]).mean().item())
    assert cosines == sorted(cosines)  # the direction improves with B


def test_cosine_at_a_large_batch_is_the_predicted_one(per_example_gradients):
    """cos(g_B, g) ~ |g| / sqrt(|g|^2 + E|g_B - g|^2) when the error is small."""
    gradient, n = per_example_gradients
    full = gradient(torch.arange(n))
    single = torch.stack([gradient(torch.tensor([i])) for i in range(n)])
    sigma2 = ((single - full) ** 2).sum(1).mean().item()
    B = 200
    error = sigma2 / B * (n - B) / (n - 1)
    expected = (full.norm() ** 2 / (full.norm() ** 2 + error)).sqrt().item()
    measured = F.cosine_similarity(_draws(gradient, n, B, 50, seed=1), full[None]).mean()
    assert measured.item() == pytest.approx(expected, abs=0.02)


# ----------------------------------------------------- plot_06b: saddle and gradient angle


def _escape(lr, eps):
    path = S.trajectory(S.saddle, partial(optim.SGD, lr=lr), (1.5, eps), 250)
    return int((S.saddle(path) < -0.2).nonzero()[0])


def test_saddle_escape_grows_like_log_one_over_epsilon():
    steps = [_escape(0.1, eps) for eps in (1e-1, 1e-4, 1e-8)]
    per_decade = [(steps[1] - steps[0]) / 3, (steps[2] - steps[1]) / 4]
    assert per_decade[1] == pytest.approx(per_decade[0], rel=0.2)
    # ln(1/eps) / ln(1 + rho): doubling rho divides the escape time by ln 1.2 / ln 1.1
    ratio = _escape(0.1, 1e-8) / _escape(0.2, 1e-8)
    assert ratio == pytest.approx(math.log(1.2) / math.log(1.1), rel=0.2)


def test_gradient_points_to_the_minimum_only_on_circles():
    angles = torch.linspace(0, 2 * math.pi, 17, dtype=torch.float64)[:-1]
    ring = torch.stack([angles.cos(), angles.sin()], 1)
    worst = []
    for kappa in (1, 4, 25):
        bowl = S.quadratic(1.0, float(kappa))
        points = ring / bowl(ring).sqrt()[:, None] * 0.7
        direction = -points @ bowl.hessian
        cos = F.cosine_similarity(direction, -points).clamp(-1, 1)
        worst.append(torch.rad2deg(torch.acos(cos)).max().item())
    assert worst[0] < 0.01 < worst[1] < worst[2]


# ------------------------------------------------------------- plot_07: momentum theory


def test_momentum_needs_about_sqrt_kappa_times_fewer_steps():
    kappa = 100
    q = S.quadratic(1.0, kappa, angle=0.5)
    lr_m, m = S.momentum_optimal(1.0, kappa)
    runs = {
        "GD": partial(optim.SGD, lr=S.gd_optimal(1, kappa)),
        "momentum": partial(optim.Momentum, lr=lr_m, momentum=m),
    }
    steps = {}
    for name, factory in runs.items():
        path = S.trajectory(q, factory, q.start, 1000)
        steps[name] = math.ceil(math.log(1e-6) / math.log(S.empirical_rate(path.norm(dim=1))))
    assert 5 < steps["GD"] / steps["momentum"] < 20


def test_too_much_momentum_converges_at_rate_sqrt_alpha():
    mu, L = 1.0, 100.0
    bowl = S.quadratic(mu, L, angle=0.5)
    lr, _ = S.momentum_optimal(mu, L)
    path = S.trajectory(bowl, partial(optim.Momentum, lr=lr, momentum=0.95), bowl.start, 600)
    assert S.empirical_rate(path.norm(dim=1)) == pytest.approx(math.sqrt(0.95), rel=0.01)
    assert math.sqrt(0.95) > S.momentum_rate_optimal(mu, L)  # worse than Polyak's setting


def test_polyak_setting_has_the_lowest_rate_of_the_map():
    mu, L = 1.0, 100.0
    lr, beta = S.momentum_optimal(mu, L)
    grid_lr = torch.linspace(1e-3, 0.045, 40).tolist()
    grid_m = torch.linspace(0.0, 0.99, 40).tolist()
    rate = S.rate_map(grid_lr, grid_m, [mu, L])
    assert S.momentum_rate(lr, beta, [mu, L]) <= rate.min().item() + 1e-6


# ---------------------------------------------------------- plot_08: adaptive first step


def test_first_adaptive_step_moves_each_coordinate_by_epsilon():
    ravine, eps = S.SURFACES["ravine"], 0.1
    expected = {
        optim.AdaGrad: eps,
        partial(optim.RMSProp, alpha=0.9): eps / math.sqrt(1 - 0.9),
        optim.Adam: eps,
    }
    for make, move in expected.items():
        path = S.trajectory(ravine, partial(make, lr=eps), ravine.start, 1)
        torch.testing.assert_close(
            (path[1] - path[0]).abs(), torch.full((2,), move, dtype=path.dtype), rtol=0.01, atol=0
        )


# ----------------------------------------------------------- plot_09: bias correction


def _adam_stream(betas, correct, steps, mu=1.0, sigma=3.0, coords=2000, seed=0):
    """Mean s, r and |step| over the coordinates, for Adam with lr = 1 on N(mu, sigma^2)."""
    g = torch.Generator().manual_seed(seed)
    theta = torch.zeros(coords, requires_grad=True)
    opt = optim.Adam([theta], lr=1.0, betas=betas, bias_correction=correct)
    s, r, step = [], [], []
    for _ in range(steps):
        theta.grad = mu + sigma * torch.randn(coords, generator=g)
        before = theta.detach().clone()
        opt.step()
        s.append(opt.state[theta]["s"].mean().item())
        r.append(opt.state[theta]["r"].mean().item())
        step.append((theta.detach() - before).abs().mean().item())
    return torch.tensor(s), torch.tensor(r), torch.tensor(step)


def test_raw_second_moment_is_biased_by_one_minus_rho2_to_the_t():
    _, r, _ = _adam_stream((0.9, 0.999), True, 200)
    for t in (1, 10, 100, 200):
        assert r[t - 1] / (1.0 + 9.0) == pytest.approx(1 - 0.999**t, rel=0.05)


def test_raw_over_corrected_step_is_the_bias_ratio_at_every_step():
    T = 300
    t = torch.arange(1, T + 1, dtype=torch.float64)
    peaks = []
    for beta2 in (0.99, 0.999, 0.9999):
        *_, corrected = _adam_stream((0.9, beta2), True, T)
        *_, raw = _adam_stream((0.9, beta2), False, T)
        ratio, theory = raw / corrected, (1 - 0.9**t) / torch.sqrt(1 - beta2**t)
        torch.testing.assert_close(ratio.double(), theory, rtol=1e-3, atol=0)
        peaks.append(ratio.max().item())
    assert peaks[1] > 3 and peaks[0] < peaks[1] < peaks[2]


def test_corrected_step_settles_at_the_signal_to_noise_ratio():
    *_, corrected = _adam_stream((0.9, 0.999), True, 1500, coords=5000)
    snr = 1.0 / math.sqrt(1.0 + 9.0)
    assert corrected[-100:].mean().item() == pytest.approx(snr, rel=0.1)


def test_first_raw_step_without_momentum_is_one_over_sqrt_one_minus_rho2():
    *_, corrected = _adam_stream((0.0, 0.999), True, 3)
    *_, raw = _adam_stream((0.0, 0.999), False, 3)
    assert (raw[0] / corrected[0]).item() == pytest.approx(1 / math.sqrt(0.001), rel=0.01)


# ---------------------------------------------------------------- plot_09b: Newton's step


@pytest.mark.parametrize("kappa", [10, 100, 1000])
def test_one_newton_step_lands_on_the_minimum_of_a_quadratic(kappa):
    bowl = S.quadratic(1.0, kappa, angle=0.5)
    theta = torch.tensor(bowl.start, dtype=torch.float64)
    newton = theta - torch.linalg.solve(bowl.hessian, S.gradient(bowl, theta))
    assert newton.norm() < 1e-12


# ------------------------------------------------- plot_10: the test runs are the tuning runs


def test_test_runs_repeat_the_tuning_runs():
    """Evaluating on the test split instead of the validation one changes no training step."""
    base = Config(
        n_train=500, holdout=500, evaluate_on="validation", hidden=(16,), epochs=1, batch_size=50
    )
    configs = {
        "momentum": base.replace(optimizer="momentum", lr=0.3, optimizer_kwargs={"momentum": 0.9}),
        "adam": base.replace(optimizer="adam", lr=3e-3),
    }
    validation = sweep(configs, seeds=range(3))
    test = sweep(
        {k: c.replace(evaluate_on="test", n_test=200) for k, c in configs.items()}, seeds=range(3)
    )
    for name in configs:
        assert test[name].evaluated_on == "test" and validation[name].evaluated_on == "validation"
        assert test[name].values("train_loss") == pytest.approx(
            validation[name].values("train_loss"), abs=1e-6
        )
        for a, b in zip(validation[name].histories, test[name].histories, strict=True):
            assert a.step_loss == b.step_loss
