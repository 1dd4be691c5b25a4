"""
Momentum on MNIST: a larger step, or more?
==========================================

With :math:`\\alpha = 0.9` the velocity of momentum adds up about
:math:`1/(1-\\alpha) = 10` past gradients: where the gradient changes
slowly, momentum with step :math:`\\rho` moves like gradient descent with the
*effective* step :math:`\\rho/(1-\\alpha)`. Is that all momentum does? We
train the network of Question 1 (784-120-80-10, sigmoid) on the first 10,000
MNIST training images for 3 epochs, over 5 seeds, in two families of runs:

* the **same step** :math:`\\rho = 0.05` with :math:`\\alpha = 0, 0.5, 0.9`;
* the **same effective step** :math:`\\rho/(1-\\alpha) = 0.5`, with
  :math:`\\alpha = 0, 0.5, 0.9`,

and Nesterov's variant at :math:`\\rho = 0.05, \\alpha = 0.9`.

The lecture's symbols, the book's names and torch's arguments are set side by
side on the :ref:`notation` page; French terms are in the :ref:`glossary`.
"""

# %%
# The runs
# --------
# :math:`\alpha = 0` is plain SGD (the update rules are on the
# :doc:`previous page <plot_07_momentum_nesterov>`).
import itertools
import math

import matplotlib.pyplot as plt

from mla_course import plots
from mla_course.claims import check, check_order, check_unresolved
from mla_course.config import Config
from mla_course.runs import sweep
from mla_course.settings import pick

plots.use_style()
base = Config(
    n_train=pick(full=10_000, quick_value=4_000),
    n_test=pick(full=None, quick_value=2_000),
    epochs=pick(full=3, quick_value=2),
)


def heavy_ball(lr, alpha, optimizer="momentum"):
    """The configuration with step lr and momentum alpha (0: plain SGD)."""
    if alpha == 0:
        return base.replace(lr=lr)
    kwargs = {"momentum": alpha}
    return base.replace(optimizer=optimizer, lr=lr, optimizer_kwargs=kwargs)


runs = {
    "ρ=0.05, α=0": (0.05, 0.0),
    "ρ=0.05, α=0.5": (0.05, 0.5),
    "ρ=0.05, α=0.9": (0.05, 0.9),
    "ρ=0.5, α=0": (0.5, 0.0),
    "ρ=0.25, α=0.5": (0.25, 0.5),
}
configs = {label: heavy_ball(*step) for label, step in runs.items()}
configs["Nesterov ρ=0.05, α=0.9"] = heavy_ball(0.05, 0.9, "nesterov")
seeds = range(5)
table = sweep(configs, seeds=seeds)
table

# %%
# Same step, or same effective step
# ---------------------------------
# Left, the same step: the more momentum, the faster. Right, the same
# effective step: the three curves come much closer together.
same_step = ["ρ=0.05, α=0", "ρ=0.05, α=0.5", "ρ=0.05, α=0.9"]
same_effective = ["ρ=0.5, α=0", "ρ=0.25, α=0.5", "ρ=0.05, α=0.9"]
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
for ax, labels, title in zip(
    axes,
    (same_step, same_effective),
    ("same step ρ = 0.05", "same effective step ρ/(1-α) = 0.5"),
    strict=True,
):
    for label in labels:
        mean, std = (100 * x for x in table[label].curve("test_acc"))
        epochs = range(1, len(mean) + 1)
        ax.errorbar(epochs, mean, yerr=std, marker="o", capsize=3, label=label)
    ax.set(xlabel="epoch", title=title)
    ax.legend()
axes[0].set_ylabel("test accuracy (%), mean ± std")
plt.show()

# %%
# The checks behind the two panels: at the same step each increase of
# :math:`\alpha` helps (a one-sided t-test over the 5 seeds); at the same
# effective step the spread of the three runs is a small fraction of the
# spread at the same step.
for low, high in itertools.pairwise(same_step):
    check_order(f"{high} beats {low}", table[high], table[low])


def spread(labels):
    means = [table[label].mean() for label in labels]
    return max(means) - min(means)


check(
    "at the same effective step, the spread is under a fifth of the spread "
    "at the same step",
    spread(same_effective) < spread(same_step) / 5,
    measured=f"{100 * spread(same_effective):.2f} vs "
    f"{100 * spread(same_step):.2f} points",
)

# %%
# Momentum with :math:`\rho` against SGD with :math:`10\rho`
# ----------------------------------------------------------
# The effective step is an approximation of the averaged motion, not an
# identity: the two runs below share it, and their remaining gap is printed
# with its noise (standard error of the difference over the 5 seeds). SGD at
# the large step takes each noisy mini-batch gradient at full weight;
# momentum averages about ten of them before moving.
mom, sgd10 = table["ρ=0.05, α=0.9"], table["ρ=0.5, α=0"]
sgd = table["ρ=0.05, α=0"]
near, far = mom.mean() - sgd10.mean(), mom.mean() - sgd.mean()
noise = math.hypot(mom.sem(), sgd10.sem())
print(
    f"momentum - SGD(10 rho): {100 * near:+.2f} points "
    f"(s.e. {100 * noise:.2f}); momentum - SGD(rho): {100 * far:+.2f}"
)
check(
    "momentum is at least 5 times closer to SGD at the effective step "
    "than to SGD at the same step",
    abs(near) < abs(far) / 5,
    measured=f"gaps {100 * near:+.2f} and {100 * far:+.2f} points",
)

# %%
# Where Nesterov takes its gradient
# ---------------------------------
# *Le gradient n'est pas évalué pour la même position : on se déplace
# d'abord dans la direction du gradient cumulé, puis on corrige.* One step
# from the same :math:`\theta` and velocity :math:`v` (from a momentum run on
# the bowl): both coast by :math:`\alpha v`; momentum adds
# :math:`-\rho\nabla\mathcal{L}(\theta)`, computed where it was, Nesterov
# :math:`-\rho\nabla\mathcal{L}(\theta + \alpha v)`, computed where it is
# going. Here :math:`\theta` sits near the valley floor and the velocity
# carries it up the opposite wall: the gradient at the look-ahead point
# already pulls back.
from functools import partial

import torch

from mla_course import optim
from mla_course import surfaces as S

bowl = S.quadratic(1.0, 100.0, angle=0.5)  # the bowl of the previous page
alpha, rho = 0.9, 0.01
run = S.trajectory(
    bowl, partial(optim.Momentum, lr=rho, momentum=alpha), bowl.start, 4
)
theta, v = run[4], run[4] - run[3]  # theta <- theta + v: v is the last step
ax = plots.draw_nesterov_step(bowl, theta, v, rho, alpha)
floor = torch.linalg.eigh(bowl.hessian).eigenvectors[:, 0]  # small eigenvalue
ax.plot(*torch.outer(torch.tensor([-2.0, 2.0]), floor).T, "k--", lw=1)
ax.lines[-1].set_label("valley floor")
ax.legend(loc="lower right")
ax.set_title(f"One step from the same θ and v (α={alpha}, ρ={rho})")
plt.show()
_, after_momentum, after_nesterov = S.nesterov_step(bowl, theta, v, rho, alpha)
losses = [bowl(x).item() for x in (theta, after_momentum, after_nesterov)]
check(
    "from this θ and v, the Nesterov step ends lower than the momentum step",
    losses[2] < losses[1],
    measured="loss at θ {:.4f}, after momentum {:.4f}, after Nesterov "
    "{:.4f}".format(*losses),
)

# %%
# On MNIST, with the same step and momentum (*donne généralement de
# meilleurs résultats*, says the lecture):
nesterov = table["Nesterov ρ=0.05, α=0.9"]
check_unresolved(
    "the gap between Nesterov and momentum is below what 5 seeds resolve",
    nesterov,
    mom,
    full_only=True,  # quick mode: Nesterov leaves the plateau sooner
)

# %%
# On this network and budget the look-ahead does not separate from the heavy
# ball: its advantage, one step earlier to correct an overshoot, matters most
# at large :math:`\alpha` on sharply curved problems
# :cite:p:`sutskever2013importance`.
#
# What to remember
# ----------------
# * At a fixed step, momentum trains faster the larger :math:`\alpha`.
# * Much of that gain is a larger step: runs with the same
#   :math:`\rho/(1-\alpha)` land close to one another.
# * Close is not equal: compare momentum and SGD at the same effective step
#   with their noise, and tune :math:`\rho` for each optimiser (the
#   :doc:`comparison page <plot_10_optimiser_comparison>` does).
#
# Further reading
# ---------------
# Polyak's heavy ball :cite:p:`polyak1964some`; Sutskever et al. on momentum
# and Nesterov in deep learning :cite:p:`sutskever2013importance`; chapter
# 8.3 of the Deep Learning book :cite:p:`goodfellow2016deep`.
#
# Exercise
# --------
#
# **Exercise.** Predict first: keep the effective step at 0.5 but push the
# momentum to :math:`\alpha = 0.99` (:math:`\rho = 0.005`). The velocity now
# averages about 100 gradients. Does the run stay as close to the others of
# the right panel? Train it with ``heavy_ball(0.005, 0.99)``.

# %% [solution]
# **Solution.** No: with :math:`\alpha = 0.99` the velocity still carries
# gradients from a hundred steps back, taken where the network no longer is.
# The run falls behind the :math:`\alpha = 0.9` run that shares its effective
# step: :math:`\rho/(1-\alpha)` describes momentum only while the gradient
# changes little over :math:`1/(1-\alpha)` steps.
long_memory = sweep({"α=0.99": heavy_ball(0.005, 0.99)}, seeds=seeds)
check_order(
    "at the same effective step, α = 0.9 beats α = 0.99",
    mom,
    long_memory["α=0.99"],
)

# sphinx_gallery_thumbnail_number = 1
