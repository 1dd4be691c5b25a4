"""
Momentum and Nesterov
=====================

*Idée : ne pas tenir compte uniquement du gradient, prendre en compte les
déplacements précédents* — a ball rolling in a bowl. The lecture introduces a
velocity :math:`v`, an exponential moving average of the steps,
:math:`v \\leftarrow \\alpha v - \\rho \\nabla_\\theta \\mathcal{L}(\\theta)`,
:math:`\\theta \\leftarrow \\theta + v`, and Nesterov's variant, which takes
the gradient at the look-ahead point :math:`\\theta + \\alpha v`. It quotes
Goh's *Why momentum really works*: momentum *allows a larger range of
step-sizes to be used, and creates its own oscillations. What is going on?*

On an ill-conditioned quadratic everything is known in closed form, so we
measure the rates of the package's optimisers against the theory
(:mod:`mla_course.surfaces`) and map the step sizes that work. The next page
draws Nesterov's look-ahead and trains both on MNIST.

The lecture's symbols, the book's names and torch's arguments are set side by
side on the :ref:`notation` page; French terms are in the :ref:`glossary`.
"""

# %%
# The update rules
# ----------------
# The package's heavy ball, the one copy that :class:`~mla_course.optim.
# Momentum` and the batched engine both call:
import math
from functools import partial

import matplotlib.pyplot as plt
import torch

from mla_course import optim, plots
from mla_course import surfaces as S
from mla_course.claims import check
from mla_course.settings import pick
from mla_course.source import show_source

plots.use_style()
show_source(optim.momentum_update)

# %%
# Nesterov's look-ahead, stored so that the usual gradient is the one needed:
show_source(optim.nesterov_update)

# %%
# Zig-zag in an elongated bowl
# ----------------------------
# :math:`f(\theta) = \frac12 \theta^\top A \theta` with Hessian eigenvalues
# :math:`\mu = 1` and :math:`L = 100`. Gradient descent at its best step
# :math:`2/(\mu + L)` bounces across the valley; momentum at Polyak's optimal
# setting follows it; too much momentum oscillates on its own.
mu, L = 1.0, 100.0
bowl = S.quadratic(mu, L, angle=0.5)
lr_gd = S.gd_optimal(mu, L)
lr_mom, beta = S.momentum_optimal(mu, L)
steps = 60
paths = {
    f"GD, ρ={lr_gd:.3f}": partial(optim.SGD, lr=lr_gd),
    f"momentum, ρ={lr_mom:.3f}, α={beta:.2f}": partial(
        optim.Momentum, lr=lr_mom, momentum=beta
    ),
    "momentum, α=0.95 (too much)": partial(
        optim.Momentum, lr=lr_mom, momentum=0.95
    ),
}
paths = {k: S.trajectory(bowl, f, bowl.start, steps) for k, f in paths.items()}
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), sharey=True)
for ax, (label, path) in zip(axes, paths.items(), strict=True):
    plots.draw_surface(bowl, {label: path}, ax=ax)
    ax.set_aspect("equal")
    ax.set_title(f"{label}\n{steps} steps: {path[-1].norm():.1e} away")
    ax.get_legend().remove()
plt.show()
distance = [path[-1].norm().item() for path in paths.values()]
check(
    "after 60 steps, Polyak's momentum is nearer the minimum than GD and "
    "than momentum with α = 0.95",
    distance[1] < min(distance[0], distance[2]),
    measured=", ".join(f"{d:.1e}" for d in distance),
)

# %%
# Measured rates against the theory
# ---------------------------------
# The distance to the minimum shrinks like :math:`r^k`. At their optimal
# settings, gradient descent reaches :math:`r = (\kappa-1)/(\kappa+1)` and
# momentum :math:`(\sqrt\kappa-1)/(\sqrt\kappa+1)`; Nesterov with
# :math:`\rho = 1/L` and the same :math:`\alpha` gets the exact rate of
# :func:`~mla_course.surfaces.momentum_rate`. We fit the rate of the second
# half of each run (:func:`~mla_course.surfaces.empirical_rate`).


def optimal(kappa):
    """Each method at its optimal setting on the bowl: (factory, rate)."""
    lr_m, m = S.momentum_optimal(1.0, kappa)
    m_nag = S.momentum_rate_optimal(1.0, kappa)
    nag = S.momentum_rate(1 / kappa, m_nag, [1, kappa], nesterov=True)
    return {
        "GD": (
            partial(optim.SGD, lr=S.gd_optimal(1, kappa)),
            S.gd_rate(1, kappa),
        ),
        "momentum": (partial(optim.Momentum, lr=lr_m, momentum=m), m_nag),
        "Nesterov": (
            partial(optim.Nesterov, lr=1 / kappa, momentum=m_nag),
            nag,
        ),
    }


# %%
# The runs, with the number of steps to shrink the distance by
# :math:`10^6` at the measured rate (that the measured rates are the
# theoretical ones is an identity, which the book's tests check):
kappas = pick(full=[10, 100, 1000], quick_value=[10])
to_1e6, worst = {}, 0.0
print(f"{'kappa':>6} {'method':>9} {'theory':>8} {'measured':>9} {'steps':>6}")
for kappa in kappas:
    q = S.quadratic(1.0, kappa, angle=0.5)
    for method, (factory, theory) in optimal(kappa).items():
        n = min(math.ceil(math.log(1e-40) / math.log(theory)), 4000)
        path = S.trajectory(q, factory, q.start, n)
        measured = S.empirical_rate(path.norm(dim=1))
        worst = max(worst, abs(measured - theory) / theory)
        to_1e6[kappa, method] = math.ceil(math.log(1e-6) / math.log(measured))
        row = f"{theory:>8.4f} {measured:>9.4f} {to_1e6[kappa, method]:>6}"
        print(f"{kappa:>6} {method:>9} {row}")
print(f"largest gap between a measured rate and its theory: {worst:.2%}")
if 100 in kappas:
    ratio = to_1e6[100, "GD"] / to_1e6[100, "momentum"]
    print(f"at κ = 100, GD needs {ratio:.1f} times the steps of momentum")

# %%
# The number of steps grows like :math:`\kappa` for gradient descent and like
# :math:`\sqrt\kappa` with momentum (the last column).
#
# A wider range of step sizes
# ---------------------------
# Along an eigenvector of eigenvalue :math:`\lambda`, gradient descent is
# stable only for :math:`\rho\lambda < 2`, heavy-ball momentum for
# :math:`\rho\lambda < 2(1+\alpha)` and Nesterov for
# :math:`\rho\lambda < 2(1+\alpha)/(1+2\alpha)`. The loss after 200 steps
# over a grid of step sizes (a run that ends above its start is not drawn):
lrs = torch.logspace(-4, math.log10(0.05), pick(full=30, quick_value=8))
settings = {
    "GD (α=0)": (optim.Momentum, 0.0),
    "momentum α=0.5": (optim.Momentum, 0.5),
    "momentum α=0.9": (optim.Momentum, 0.9),
    "Nesterov α=0.9": (optim.Nesterov, 0.9),
}
fig, ax1 = plt.subplots(figsize=(7, 4))
start_loss, largest = bowl(torch.tensor(bowl.start)).item(), {}
for label, (cls, m) in settings.items():
    make = [partial(cls, lr=lr, momentum=m) for lr in lrs.tolist()]
    ends = [S.trajectory(bowl, f, bowl.start, 200)[-1] for f in make]
    final = bowl(torch.stack(ends))
    final[~(final < start_loss)] = math.nan  # diverged
    limit = S.stability_limit(L, m, nesterov=cls is optim.Nesterov)
    (line,) = ax1.loglog(lrs, final, marker=".", label=label)
    ax1.axvline(limit, color=line.get_color(), ls=":", lw=1)
    works = lrs[final < 1e-3 * start_loss]  # loss divided by 1000 or more
    largest[label] = works.max().item() if len(works) else math.nan
ax1.axhline(1e-3 * start_loss, color="gray", lw=0.8)
ax1.set(xlabel="step size ρ", ylabel="loss after 200 steps")
ax1.set_title("Dotted: stability limits")
ax1.legend()
plt.show()

# %%
# The largest step that divides the loss by 1000 in 200 steps follows the
# stability limits:
g, m9, n9 = (
    largest[k] for k in ("GD (α=0)", "momentum α=0.9", "Nesterov α=0.9")
)
check(
    "momentum α=0.9 works up to a larger step than GD, Nesterov α=0.9 "
    "only up to a smaller one, as their stability limits say",
    n9 < g < m9,
    full_only=True,  # the quick grid of step sizes is too coarse
    measured=f"largest working ρ: GD {g:.1e}, Nesterov {n9:.1e}, "
    f"momentum {m9:.1e}",
)

# %%
# The exact rate over (step size, momentum) on the same bowl: white is
# divergence, the star is Polyak's optimum. Momentum widens the stable
# region, and past the optimum its rate stops improving.
fig, ax2 = plt.subplots(figsize=(7, 4))
grid_lr = torch.linspace(1e-3, 0.045, pick(full=90, quick_value=20))
grid_m = torch.linspace(0.0, 0.99, pick(full=90, quick_value=20))
rate = S.rate_map(grid_lr.tolist(), grid_m.tolist(), [mu, L])  # (m, lr)
im = ax2.pcolormesh(grid_lr, grid_m, rate.masked_fill(rate >= 1, math.nan))
ax2.plot(lr_mom, beta, "*", color="white", markeredgecolor="k", ms=14)
ax2.set(xlabel="step size ρ", ylabel="momentum α", title="Rate (κ=100)")
fig.colorbar(im, ax=ax2, label="rate r (lower is faster)")
plt.show()
star = S.momentum_rate(lr_mom, beta, [mu, L])
print(f"rate at the star {star:.4f}, lowest on the map {rate.min():.4f}")

# %%
# What to remember
# ----------------
# * Gradient descent needs about :math:`\kappa` steps to shrink the error by
#   a constant factor on an ill-conditioned bowl; momentum needs about
#   :math:`\sqrt\kappa`: the measured rates match the theory.
# * Momentum widens the range of stable step sizes (up to
#   :math:`2(1+\alpha)/L`) but, with too much :math:`\alpha`, it oscillates on
#   its own. Nesterov corrects an overshoot one step earlier; the price, at
#   large :math:`\alpha`, is a narrower range,
#   :math:`2(1+\alpha)/((1+2\alpha)L)`.
#
# The :doc:`next page <plot_07b_momentum_effective_step>` draws Nesterov's
# look-ahead and trains momentum on MNIST.
#
# Further reading
# ---------------
# Polyak's heavy ball :cite:p:`polyak1964some`, Nesterov's method
# :cite:p:`nesterov1983method`, its use in deep learning
# :cite:p:`sutskever2013importance`, and Goh's interactive article
# :cite:p:`goh2017why`.
#
# Exercise
# --------
#
# **Exercise.** Predict first: on the bowl (:math:`\kappa = 100`), keep
# Polyak's step but raise the momentum to :math:`\alpha = 0.95`, as in the
# third panel of the first figure. Is the rate better or worse than at the
# optimum, and what is it? (Hint: when the roots of the recurrence are
# complex, their modulus is :math:`\sqrt\alpha`.) Measure it with
# ``S.trajectory`` and ``S.empirical_rate``.

# %% [solution]
# **Solution.** Worse: past Polyak's :math:`\alpha` the two roots of every
# eigen-direction are complex with modulus :math:`\sqrt{\alpha}`, so the
# rate is :math:`\sqrt{0.95} \approx 0.975` against about 0.82 at the
# optimum: the ball oscillates and converges slowly, whatever the curvature.
slow = partial(optim.Momentum, lr=lr_mom, momentum=0.95)
rate = S.empirical_rate(S.trajectory(bowl, slow, bowl.start, 600).norm(dim=1))
print(f"rate {rate:.4f}, sqrt(0.95) = {math.sqrt(0.95):.4f}")
print(f"at Polyak's optimum: {S.momentum_rate_optimal(mu, L):.4f}")

# sphinx_gallery_thumbnail_number = 1
