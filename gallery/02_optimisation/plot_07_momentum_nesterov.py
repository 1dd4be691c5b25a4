"""
Momentum and Nesterov
=====================

*Idée : ne pas tenir compte uniquement du gradient, prendre en compte les
déplacements précédents* — a ball rolling in a bowl. The lecture introduces a
velocity :math:`v`, an exponential moving average of the steps,

.. math:: v \\leftarrow \\alpha v - \\rho \\nabla_\\theta \\mathcal{L}(\\theta), \\qquad
          \\theta \\leftarrow \\theta + v,

and Nesterov's variant, which takes the gradient at the look-ahead point
:math:`\\theta + \\alpha v`. It quotes Goh's *Why momentum really works*: momentum
damps oscillations and speeds up convergence, but *it allows a larger range of
step-sizes to be used, and creates its own oscillations. What is going on?*

On an ill-conditioned quadratic everything is known in closed form, so we
measure the rates of our optimisers (:mod:`mla_course.optim`) against the
theory (:mod:`mla_course.surfaces`), map the step sizes that work, draw the
look-ahead, and finish on MNIST (the first 10,000 training images and 3 epochs,
to keep the page to a couple of minutes on a CPU).
"""

# %%
# Zig-zag in an elongated bowl
# ----------------------------
# :math:`f(\theta) = \frac12 \theta^\top A \theta` with Hessian eigenvalues
# :math:`\mu = 1` and :math:`L = 100`: a condition number :math:`\kappa = 100`.
# Gradient descent at its best step :math:`2/(\mu + L)` bounces across the
# valley, because the gradient points to the minimum only when the level sets
# are circles. Momentum at Polyak's optimal setting follows the valley.
import math
from functools import partial

import matplotlib.pyplot as plt
import torch

from mla_course import optim, plots
from mla_course import surfaces as S
from mla_course.utils import pick

plots.use_style()
mu, L = 1.0, 100.0
bowl = S.quadratic(mu, L, angle=0.5)
lr_gd = S.gd_optimal(mu, L)
lr_mom, beta = S.momentum_optimal(mu, L)
print(f"gradient descent: lr = {lr_gd:.4f}; momentum: lr = {lr_mom:.4f}, alpha = {beta:.3f}")

steps = 60
paths = {
    f"gradient descent, lr={lr_gd:.3f}": partial(optim.SGD, lr=lr_gd),
    f"momentum, lr={lr_mom:.3f}, α={beta:.2f}": partial(optim.Momentum, lr=lr_mom, momentum=beta),
    "momentum, α=0.95 (too much)": partial(optim.Momentum, lr=lr_mom, momentum=0.95),
}
paths = {label: S.trajectory(bowl, make, bowl.start, steps) for label, make in paths.items()}
fig, axes = plt.subplots(1, 3, figsize=(12, 3.2), sharey=True)
for ax, (label, path) in zip(axes, paths.items(), strict=True):
    S.draw(bowl, {label: path}, ax=ax)
    ax.set_aspect("equal")
    ax.set_title(f"{label}\ndistance after {steps} steps: {path[-1].norm():.1e}", fontsize=9)
    ax.get_legend().remove()
plt.show()

# %%
# Measured rates against the theory
# ---------------------------------
# On a quadratic the distance to the minimum shrinks like :math:`r^k`. At their
# optimal settings, gradient descent reaches :math:`r = (\kappa-1)/(\kappa+1)`
# and momentum :math:`r = (\sqrt\kappa-1)/(\sqrt\kappa+1)`; Nesterov with
# :math:`\rho = 1/L` and :math:`\alpha = (\sqrt\kappa-1)/(\sqrt\kappa+1)` reaches
# :math:`1 - 1/\sqrt\kappa` (:func:`~mla_course.surfaces.momentum_rate` gives the
# exact rate of any setting). We run each and fit the rate of the second half
# of the run with :func:`~mla_course.surfaces.empirical_rate`.
kappas = pick(full=[10, 100, 1000], quick_value=[10])
shown = kappas[min(1, len(kappas) - 1)]  # the one drawn
fig, ax = plt.subplots(figsize=(7, 4))
print(f"{'kappa':>6} {'method':>9} {'theory':>8} {'measured':>9} {'steps to 1e-6':>14}")
for kappa in kappas:
    q = S.quadratic(1.0, kappa, angle=0.5)
    lr_m, m = S.momentum_optimal(1.0, kappa)
    m_nag = S.momentum_rate_optimal(1.0, kappa)
    runs = {
        "GD": (partial(optim.SGD, lr=S.gd_optimal(1, kappa)), S.gd_rate(1, kappa)),
        "momentum": (
            partial(optim.Momentum, lr=lr_m, momentum=m),
            S.momentum_rate_optimal(1, kappa),
        ),
        "Nesterov": (
            partial(optim.Nesterov, lr=1 / kappa, momentum=m_nag),
            S.momentum_rate(1 / kappa, m_nag, [1, kappa], nesterov=True),
        ),
    }
    for method, (factory, theory) in runs.items():
        n = min(math.ceil(math.log(1e-40) / math.log(theory)), 4000)
        err = S.trajectory(q, factory, q.start, n).norm(dim=1)
        measured = S.empirical_rate(err)
        print(
            f"{kappa:>6} {method:>9} {theory:>8.4f} {measured:>9.4f} "
            f"{math.ceil(math.log(1e-6) / math.log(measured)):>14}"
        )
        if kappa == shown:
            ax.semilogy(err[:400], label=f"{method}: measured rate {measured:.3f}")
            ax.semilogy(err[0] * theory ** torch.arange(400.0), "k:", lw=0.8)
        assert abs(measured - theory) < 0.02 * theory  # the theory holds
ax.set(
    xlabel="step",
    ylabel=r"distance to the minimum $\|\theta_k - \theta^*\|$",
    title=f"κ = {shown}; dotted: theoretical $r^k$",
    ylim=(1e-12, 10),
)
ax.legend()
plt.show()

# %%
# The number of steps grows like :math:`\kappa` for gradient descent and like
# :math:`\sqrt\kappa` with momentum: for :math:`\kappa = 100` that is roughly ten
# times fewer steps.
#
# A wider range of step sizes
# ---------------------------
# Along an eigenvector of eigenvalue :math:`\lambda`, gradient descent is stable
# only for :math:`\rho\lambda < 2`, heavy-ball momentum for
# :math:`\rho\lambda < 2(1+\alpha)` and Nesterov for
# :math:`\rho\lambda < 2(1+\alpha)/(1+2\alpha)`. Left: the loss after 200 steps
# for a grid of step sizes (a run whose loss ends above where it started is not
# drawn). Right: the exact rate over (step size, momentum); white is
# divergence, the star is Polyak's optimum.
lrs = torch.logspace(-4, math.log10(0.05), pick(full=30, quick_value=8)).tolist()
settings = {
    "GD (α=0)": (optim.Momentum, 0.0),
    "momentum α=0.5": (optim.Momentum, 0.5),
    "momentum α=0.9": (optim.Momentum, 0.9),
    "Nesterov α=0.9": (optim.Nesterov, 0.9),
}
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4))
start_loss = bowl(torch.tensor(bowl.start)).item()
for label, (cls, m) in settings.items():
    paths = [S.trajectory(bowl, partial(cls, lr=lr, momentum=m), bowl.start, 200) for lr in lrs]
    final = bowl(torch.stack([path[-1] for path in paths]))
    final[~(final < start_loss)] = math.nan  # diverged
    limit = S.stability_limit(L, m, nesterov=cls is optim.Nesterov)
    (line,) = ax1.loglog(lrs, final, marker=".", label=label)
    ax1.axvline(limit, color=line.get_color(), ls=":", lw=1)
    usable = [lr for lr, f in zip(lrs, final.tolist(), strict=True) if f < 1e-3 * start_loss]
    span = f"[{min(usable):.1e}, {max(usable):.1e}]" if usable else "none of the grid"
    print(f"{label:>15}: loss divided by 1000 or more for lr in {span}; limit {limit:.4f}")
ax1.axhline(1e-3 * start_loss, color="gray", lw=0.8)
ax1.set(xlabel="step size ρ", ylabel="loss after 200 steps", title="Dotted: stability limits")
ax1.legend()

grid_lr = torch.linspace(1e-3, 0.045, pick(full=90, quick_value=20)).tolist()
grid_m = torch.linspace(0.0, 0.99, pick(full=90, quick_value=20)).tolist()
rate = S.rate_map(grid_lr, grid_m, [mu, L])  # (momenta, step sizes)
im = ax2.pcolormesh(grid_lr, grid_m, rate.masked_fill(rate >= 1, math.nan), vmax=1, shading="auto")
ax2.plot(lr_mom, beta, "*", color="white", markeredgecolor="k", markersize=14)
ax2.set(xlabel="step size ρ", ylabel="momentum α", title="Rate of momentum on the bowl (κ=100)")
fig.colorbar(im, ax=ax2, label="rate r (lower is faster)")
plt.show()

# %%
# Where Nesterov takes its gradient
# ---------------------------------
# *Le gradient n'est pas évalué pour la même position : on se déplace d'abord
# dans la direction du gradient cumulé, puis on corrige.* One step from the same
# point :math:`\theta` and velocity :math:`v` (taken from a momentum run on the
# bowl): both first coast by :math:`\alpha v`; momentum then adds the step
# :math:`-\rho\nabla\mathcal{L}(\theta)` computed where it was, Nesterov the step
# :math:`-\rho\nabla\mathcal{L}(\theta + \alpha v)` computed where it is going.
# Here :math:`\theta` sits near the valley floor, where the gradient is small,
# and the velocity carries it up the opposite wall: the gradient at the
# look-ahead point already pulls back, the one at :math:`\theta` does not.
alpha, rho = 0.9, 0.01
run = S.trajectory(bowl, partial(optim.Momentum, lr=rho, momentum=alpha), bowl.start, 4)
theta, v = run[4], run[4] - run[3]  # theta <- theta + v: v is the last step
ax = S.draw_nesterov_step(bowl, theta, v, rho, alpha)
floor = torch.linalg.eigh(bowl.hessian).eigenvectors[:, 0]  # direction of the small eigenvalue
ax.plot(*torch.outer(torch.tensor([-2.0, 2.0]), floor).T, "k--", lw=1, label="valley floor")
ax.legend(loc="lower right")
ax.set_title(f"One step from the same θ and v (α={alpha}, ρ={rho})")
_, new_momentum, new_nesterov = S.nesterov_step(bowl, theta, v, rho, alpha)
print(
    f"loss at theta {bowl(theta):.4f}; after the momentum step {bowl(new_momentum):.4f}, "
    f"after the Nesterov step {bowl(new_nesterov):.4f}"
)
plt.show()

# %%
# On MNIST
# --------
# The network of Question 1 (784-120-80-10, sigmoid), trained with plain SGD,
# momentum and Nesterov. With :math:`\alpha = 0.9` the velocity adds up about
# :math:`1/(1-\alpha) = 10` past gradients, so momentum with step :math:`\rho`
# moves roughly like SGD with step :math:`10\rho`: we show both SGD step sizes.
from mla_course.experiments import Config, sweep

epochs = pick(full=3, quick_value=1)
base = Config(
    n_train=pick(full=10_000, quick_value=2_000),
    n_test=pick(full=None, quick_value=2_000),
    epochs=epochs,
    batch_size=64,
)
configs = {
    "SGD ρ=0.05": base.replace(optimizer="sgd", lr=0.05),
    "SGD ρ=0.5": base.replace(optimizer="sgd", lr=0.5),
    "momentum ρ=0.05, α=0.9": base.replace(
        optimizer="momentum", lr=0.05, optimizer_kwargs={"momentum": 0.9}
    ),
    "Nesterov ρ=0.05, α=0.9": base.replace(
        optimizer="nesterov", lr=0.05, optimizer_kwargs={"momentum": 0.9}
    ),
}
table = sweep(configs, seeds=range(pick(full=2, quick_value=1)))
table

# %%
# Momentum at :math:`\rho = 0.05` should be compared with SGD at the same step
# (it is much faster) and with SGD at the same *effective* step
# :math:`\rho/(1-\alpha) = 0.5` (they are close). Nesterov and heavy-ball
# momentum differ little here.
plots.plot_table_curves(table, metrics=("train_loss", "test_acc"), log_band=True, figsize=(11, 3.8))
plt.show()

# %%
# What to remember
# ----------------
# * Gradient descent needs about :math:`\kappa` steps to shrink the error by a
#   constant factor on an ill-conditioned bowl; momentum needs about
#   :math:`\sqrt\kappa` — the measured rates above match the theory.
# * Momentum widens the range of stable step sizes (up to :math:`2(1+\alpha)/L`)
#   but, with too much :math:`\alpha`, it oscillates on its own.
# * Nesterov evaluates the gradient at the look-ahead point, which corrects an
#   overshoot one step earlier; the price, at large :math:`\alpha`, is a
#   narrower range of stable steps, :math:`2(1+\alpha)/((1+2\alpha)L)`.
# * On MNIST, momentum with step :math:`\rho` behaves much like SGD with
#   :math:`\rho/(1-\alpha)`; compare the table's rows.
#
# Further reading
# ---------------
# Polyak's heavy ball :cite:p:`polyak1964some`, Nesterov's method
# :cite:p:`nesterov1983method`, its use in deep learning
# :cite:p:`sutskever2013importance`, and Goh's interactive article
# :cite:p:`goh2017why`.

# sphinx_gallery_thumbnail_number = 1
