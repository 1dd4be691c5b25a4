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
2,000 MNIST training images, full batch, with gradient descent and Adam.
"""

# %%
# The race
# --------
# Each optimiser from the same zero-mean initial weights; L-BFGS's steps
# each evaluate the gradient up to 20 times (its inner iterations and line
# search), so we also count the gradient evaluations.
from functools import partial

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from mla_course import optim, plots
from mla_course.claims import check
from mla_course.config import Config
from mla_course.runs import load_data
from mla_course.settings import generator, pick, seed_everything

plots.use_style()

# %%
# Newton's step on an ill-conditioned bowl
# ----------------------------------------
# On :math:`f(\theta) = \frac12\theta^\top A\theta`, the Newton step
# :math:`\theta - A^{-1}\nabla f(\theta)` lands on the minimum at once,
# whatever the condition number :math:`\kappa`; gradient descent at its best
# step needs a number of steps that grows like :math:`\kappa` (the
# :doc:`momentum page <plot_07_momentum_nesterov>`).
from mla_course import surfaces as S

for kappa in (10, 100, 1000):
    bowl = S.quadratic(1.0, kappa, angle=0.5)
    theta = torch.tensor(bowl.start, dtype=torch.float64)
    newton = theta - torch.linalg.solve(bowl.hessian, S.gradient(bowl, theta))
    gd = S.trajectory(
        bowl, partial(optim.SGD, lr=S.gd_optimal(1, kappa)), bowl.start, 100
    )[-1]
    check(
        f"κ = {kappa}: one Newton step lands on the minimum (1e-12), 100 GD "
        "steps do not",
        newton.norm() < 1e-12 < gd.norm(),
        measured=f"distance {newton.norm():.1e} after Newton, "
        f"{gd.norm():.1e} after 100 GD steps",
    )

# %%
# A network has far too many parameters to form and invert its Hessian.
#
# L-BFGS on MNIST
# ---------------
# The three optimisers, and a race that counts the gradient evaluations:
(X, y), _ = load_data(Config(n_train=pick(full=2_000, quick_value=500)))
contenders = {
    "gradient descent ε=0.5": (partial(torch.optim.SGD, lr=0.5), 300),
    "Adam ε=0.01": (partial(optim.Adam, lr=0.01), 300),
    "L-BFGS": (partial(torch.optim.LBFGS, line_search_fn="strong_wolfe"), 15),
}


def objective(model, idx=slice(None)):
    """Cross-entropy plus a small L2 penalty (a unique minimum)."""
    penalty = 1e-3 * model.weight.pow(2).sum()
    return F.cross_entropy(model(X[idx]), y[idx]) + penalty


def race(make, steps, batch=None, seed=0):
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
    for _ in range(steps):
        opt.step(closure)
        with torch.no_grad():
            trace.append((count[0], objective(model).item()))
    return trace


# %%
# Loss against gradient evaluations, above the minimum (estimated by a longer
# L-BFGS run; a gap below :math:`10^{-7}` is drawn at :math:`10^{-7}`):
traces = {label: race(make, n) for label, (make, n) in contenders.items()}
best = race(contenders["L-BFGS"][0], 60)[-1][1]
fig, ax = plt.subplots(figsize=(7, 4))
for label, trace in traces.items():
    evaluations, losses = zip(*trace, strict=True)
    gaps = [max(v - best, 1e-7) for v in losses]
    ax.loglog(evaluations, gaps, ".-", label=label)
    print(f"{label}: {evaluations[-1]} evaluations, loss {losses[-1]:.5f}")
ax.set(xlabel="gradient evaluations", ylabel="loss - minimum")
ax.set_title(f"Softmax regression, {len(X)} images, full batch")
ax.legend()
plt.show()
ends = {label: trace[-1] for label, trace in traces.items()}
(n_lbfgs, lbfgs), others = ends.pop("L-BFGS"), ends.values()
check(
    "L-BFGS ends lower than GD and Adam, with fewer gradient evaluations",
    lbfgs < min(v for _, v in others) and n_lbfgs < min(n for n, _ in others),
    measured=f"L-BFGS {lbfgs:.5f} in {n_lbfgs} evaluations; "
    + ", ".join(f"{k} {v:.5f} in {n}" for k, (n, v) in ends.items()),
)
check(
    "after 300 evaluations, GD and Adam are still 1e-3 or more above the "
    "minimum; L-BFGS is within 1e-5 of it",
    min(v for _, v in others) - best > 1e-3 and lbfgs - best < 1e-5,
    measured=f"above the minimum: L-BFGS {lbfgs - best:.1e}, "
    + ", ".join(f"{k} {v - best:.1e}" for k, (_, v) in ends.items()),
)

# %%
# On a smooth, deterministic, moderately sized problem, L-BFGS reaches the
# minimum in far fewer gradient evaluations than the first-order methods.
# With mini-batches the gradient is noisy and the curvature estimates
# degrade (the exercise below tries it), and storing even a few vectors of
# the size of the network gets costly: deep networks are trained with
# first-order methods.
#
# What to remember
# ----------------
# * Second-order methods correct both the direction and the scale of the
#   gradient with (an approximation of) the curvature.
# * L-BFGS shines on small, smooth, full-batch problems: per gradient
#   evaluation it reaches the minimum far sooner than first-order methods.
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
# images at every gradient evaluation (``race(make, steps, batch=64)``).
# Does L-BFGS keep its lead over Adam? Compare the full-batch losses at the
# end, over 3 seeds.

# %% [solution]
# **Solution.** No: each line search and each curvature pair now mixes
# gradients of different mini-batches, so L-BFGS's model of the curvature is
# wrong, and it ends well above Adam, whose moving averages are made for
# noisy gradients.
from mla_course.claims import check_order

noisy = {
    label: [
        race(contenders[label][0], steps, batch=64, seed=s)[-1][1]
        for s in range(3)
    ]
    for label, steps in (("L-BFGS", 15), ("Adam ε=0.01", 300))
}
check_order(
    "on mini-batches, L-BFGS ends above Adam (full-batch loss)",
    noisy["L-BFGS"],
    noisy["Adam ε=0.01"],
    metric="train_loss",
)
