"""
Second-order methods: L-BFGS
============================

*Il existe de nombreuses autres méthodes. Certaines s'appuient sur des
approximations d'ordre 2 : méthodes de Newton, gradient conjugué, BFGS.*
Newton's method divides the gradient by the Hessian, which fixes at once the
two faults of gradient descent seen on the previous pages: the direction
(the gradient does not point to the minimum) and the scale (one step size
for all directions). A network has far too many parameters to form its
Hessian, but L-BFGS builds an approximation of the inverse Hessian from the
last few gradients, and searches along the resulting direction with a line
search.

It needs the full gradient (no mini-batch noise), so we compare it on a small
convex problem: softmax regression with a small L2 penalty on the first
500 MNIST training images, full batch, with gradient descent and Adam.
Every method gets the same budget of gradient evaluations and its own step
from the same grid, chosen on the same criterion; the set is small so that
the whole tuning runs in seconds.

The lecture's symbols, the book's names and torch's arguments are set side by
side on the :ref:`notation` page; French terms are in the :ref:`glossary`.
"""

# %%
# Newton's step on an ill-conditioned bowl
# ----------------------------------------
# On :math:`f(\theta) = \frac12\theta^\top A\theta`, the Newton step
# :math:`\theta - A^{-1}\nabla f(\theta)` lands on the minimum at once,
# whatever the condition number :math:`\kappa` (an identity, which the
# book's tests check); gradient descent at its best step needs a number of
# steps that grows like :math:`\kappa` (the :doc:`momentum page
# <plot_07_momentum_nesterov>`).
import math
from functools import partial

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from mla_course import optim, plots
from mla_course import surfaces as S
from mla_course.claims import check, check_order
from mla_course.config import Config
from mla_course.runs import load_data
from mla_course.settings import generator, pick, seed_everything

plots.use_style()
for kappa in (10, 100, 1000):
    bowl = S.quadratic(1.0, kappa, angle=0.5)
    theta = torch.tensor(bowl.start, dtype=torch.float64)
    newton = theta - torch.linalg.solve(bowl.hessian, S.gradient(bowl, theta))
    gd = S.trajectory(
        bowl, partial(optim.SGD, lr=S.gd_optimal(1, kappa)), bowl.start, 100
    )[-1]
    print(
        f"κ = {kappa}: distance {newton.norm():.1e} after one Newton step, "
        f"{gd.norm():.1e} after 100 GD steps"
    )

# %%
# A network has far too many parameters to form and invert its Hessian.
#
# L-BFGS on MNIST
# ---------------
# Each run starts from the initial weights of its seed and stops after a
# budget of gradient evaluations. A step of L-BFGS evaluates the gradient
# several times (its inner iterations and line search), so the budget counts
# evaluations, not steps. The step size :math:`\epsilon` is the step of
# gradient descent and Adam, and the first trial step of L-BFGS's line
# search.
(X, y), _ = load_data(Config(n_train=pick(full=500, quick_value=300)))
budget = 150  # gradient evaluations per run
grid = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0)  # the same for every method
methods = {
    "gradient descent": torch.optim.SGD,
    "Adam": optim.Adam,
    "L-BFGS": partial(torch.optim.LBFGS, line_search_fn="strong_wolfe"),
}


def objective(model, idx=slice(None)):
    """Cross-entropy plus a small L2 penalty (a unique minimum)."""
    penalty = 1e-3 * model.weight.pow(2).sum()
    return F.cross_entropy(model(X[idx]), y[idx]) + penalty


def race(make, batch=None, seed=0, evaluations=budget):
    """(gradient evaluations, full-batch loss) after each step."""
    seed_everything(seed)
    model = torch.nn.Linear(784, 10)
    opt, count = make(model.parameters()), [0]
    draw = generator(seed)

    def closure():  # full batch, or a fresh mini-batch at each evaluation
        count[0] += 1
        idx = slice(None)
        if batch is not None:
            idx = torch.randint(len(X), (batch,), generator=draw)
        opt.zero_grad()
        loss = objective(model, idx)
        loss.backward()
        return loss

    trace = []
    while count[0] < evaluations:
        opt.step(closure)
        with torch.no_grad():
            trace.append((count[0], objective(model).item()))
    return [(n, v) for n, v in trace if n <= evaluations]  # within budget


# %%
# Tuning: each method's step is the one of the grid with the lowest
# full-batch loss after the budget, on seed 0. A run whose loss is not finite
# is never chosen.


def tune(names, batch=None):
    """The chosen step of each method in names."""
    chosen = {}
    for name in names:
        ends = {
            lr: race(partial(methods[name], lr=lr), batch)[-1][1]
            for lr in grid
        }
        finite = [lr for lr in grid if math.isfinite(ends[lr])]
        chosen[name] = min(finite, key=ends.get)
    return chosen


chosen = tune(methods)
print("chosen steps:", chosen)

# %%
# The race, on 5 fresh seeds at the chosen steps: loss against gradient
# evaluations, above the minimum (estimated as the lowest loss of these
# runs and of a longer L-BFGS run; a gap below :math:`10^{-7}` is drawn at
# :math:`10^{-7}`).
seeds = (1, 2, 3, 4, 5)
traces = {
    name: [
        race(partial(methods[name], lr=chosen[name]), seed=s) for s in seeds
    ]
    for name in methods
}
longer = race(partial(methods["L-BFGS"], lr=1.0), evaluations=600)
runs = [longer, *(run for name in methods for run in traces[name])]
best = min(v for run in runs for _, v in run)
fig, ax = plt.subplots(figsize=(7, 4))
for name, runs in traces.items():
    evaluations, losses = zip(*runs[0], strict=True)  # the first seed
    gaps = [max(v - best, 1e-7) for v in losses]
    ax.loglog(evaluations, gaps, ".-", label=f"{name}, ε={chosen[name]:g}")
ax.set(xlabel="gradient evaluations", ylabel="loss - minimum")
ax.set_title(f"Softmax regression, {len(X)} images, full batch, seed 1")
ax.legend()
plt.show()
ends = {name: [run[-1][1] for run in runs] for name, runs in traces.items()}
for name, values in ends.items():
    print(f"{name}: above the minimum by", [f"{v - best:.1e}" for v in values])

# %%
# The checks, over the 5 seeds. Adam's loss at its chosen step still
# oscillates from one evaluation to the next, so the gaps are compared on a
# logarithmic scale, as the figure draws them:


def log_gap(values):
    """log10 of each run's distance to the minimum (1e-7 at least)."""
    return [math.log10(max(v - best, 1e-7)) for v in values]


lbfgs = ends["L-BFGS"]
for name in ("gradient descent", "Adam"):
    check_order(
        f"at the same budget, L-BFGS ends closer to the minimum than {name}",
        log_gap(ends[name]),
        log_gap(lbfgs),
        metric="log10 gap",
        paired=True,  # the same seeds, the same initial weights
    )
first_order = min(ends["gradient descent"] + ends["Adam"]) - best
second_order = max(max(lbfgs) - best, 1e-7)
check(
    f"after {budget} evaluations, every GD and Adam run is over 10 times "
    "farther from the minimum than every L-BFGS run",
    first_order > 10 * second_order,
    measured=f"closest first-order run {first_order:.1e} above; farthest "
    f"L-BFGS run {second_order:.1e}",
)

# %%
# On a smooth, deterministic, moderately sized problem, L-BFGS reaches the
# minimum in far fewer gradient evaluations than the first-order methods,
# each at its best step. With mini-batches the gradient is noisy and the
# curvature estimates degrade (the exercise below tries it), and storing
# even a few vectors of the size of the network gets costly: deep networks
# are trained with first-order methods.
#
# What to remember
# ----------------
# * Second-order methods correct both the direction and the scale of the
#   gradient with (an approximation of) the curvature.
# * L-BFGS shines on small, smooth, full-batch problems: at the same budget
#   of gradient evaluations, each method at its best step, it ends far
#   closer to the minimum than gradient descent and Adam.
# * Mini-batch noise spoils its curvature estimates: deep networks are
#   trained with the first-order methods of the previous pages.
#
# Further reading
# ---------------
# L-BFGS :cite:p:`liu1989limited`; chapter 8.6 of the Deep Learning book on
# approximate second-order methods :cite:p:`goodfellow2016deep`.
#
# Exercise
# --------
#
# **Exercise.** Predict first: give each optimiser a fresh mini-batch of 64
# images at every gradient evaluation (``race(make, batch=64)``), tune its
# step again on the same grid and criterion (``tune(names, batch=64)``).
# Does L-BFGS keep its lead over Adam? Compare the full-batch losses at the
# end, over the 5 seeds.

# %% [solution]
# **Solution.** No: each line search and each curvature pair now mixes
# gradients of different mini-batches, so L-BFGS's model of the curvature is
# wrong, and it ends above Adam, whose moving averages are made for noisy
# gradients.
noisy_steps = tune(("L-BFGS", "Adam"), batch=64)
noisy = {
    name: [
        race(partial(methods[name], lr=lr), batch=64, seed=s)[-1][1]
        for s in seeds
    ]
    for name, lr in noisy_steps.items()
}
print("chosen steps on mini-batches:", noisy_steps)
check_order(
    "on mini-batches, L-BFGS ends farther from the minimum than Adam",
    log_gap(noisy["L-BFGS"]),
    log_gap(noisy["Adam"]),
    metric="log10 gap",
    paired=True,
)
