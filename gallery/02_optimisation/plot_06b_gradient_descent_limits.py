"""
The limits of gradient descent
==============================

*Limites de la descente de gradient*: saddle points where the gradient
vanishes, a gradient that does not point to the minimum unless the level
sets are circles, and a step size to choose by reading the loss curve, as
cs231n teaches. The first two on small surfaces of
:mod:`mla_course.surfaces`, the last on MNIST (the first 10,000 training
images, 2 epochs, 5 seeds). The :doc:`previous page
<plot_06_gradient_descent>` measured the noise and cost of mini-batches.

The lecture's symbols, the book's names and torch's arguments are set side by
side on the :ref:`notation` page; French terms are in the :ref:`glossary`.
"""

# %%
# Saddle points: the gradient vanishes
# ------------------------------------
# *Les minima locaux et les points selles : gradients nuls, très fréquent en
# grande dimension.* On :math:`f(\theta) = \frac12\theta_1^2 -
# \frac12\theta_2^2 + \frac14\theta_2^4`, the origin is a saddle between
# two minima. Gradient descent started at a distance :math:`\varepsilon`
# from the ridge :math:`\theta_2 = 0` slows down near the saddle, for a
# number of steps that grows like :math:`\log(1/\varepsilon)`.
import math
from functools import partial

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from mla_course import optim, plots
from mla_course import surfaces as S
from mla_course.claims import check, check_order
from mla_course.config import Config
from mla_course.runs import sweep
from mla_course.settings import pick

plots.use_style()

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
escape = {}
for eps in [1e-1, 1e-4, 1e-8]:
    path = S.trajectory(S.saddle, partial(optim.SGD, lr=0.1), (1.5, eps), 250)
    near = (S.saddle(path) < -0.2).nonzero()  # near a minimum: f < -0.2
    escape[eps] = int(near[0]) if len(near) else math.inf
    ax1.plot(path[:, 0], path[:, 1], ".-", ms=3, label=f"ε = {eps:g}")
    slope = torch.hypot(path[:, 0], path[:, 1] ** 3 - path[:, 1])
    ax2.semilogy(slope, label=f"ε = {eps:g}")
plots.draw_surface(S.saddle, ax=ax1)
ax1.set_title("Gradient descent (ρ=0.1) near a saddle point")
ax1.legend(loc="upper left")
ax2.set(xlabel="step", ylabel=r"$\|\nabla f(\theta_k)\|$")
ax2.set_title("The gradient nearly vanishes near the saddle")
ax2.legend()
plt.show()
steps = list(escape.values())
print("steps to f < -0.2:", dict(zip(escape, steps, strict=True)))
print(
    "per decade of 1/ε:", (steps[1] - steps[0]) / 3, (steps[2] - steps[1]) / 4
)

# %%
# The gradient does not point to the minimum
# ------------------------------------------
# *La direction du gradient n'est pas optimale, sauf si l'ellipse est un
# cercle.* On a quadratic bowl whose Hessian has eigenvalues 1 and
# :math:`\kappa`, we draw :math:`-\nabla f` on a ring of points and measure its
# angle with the direction of the minimum.
from dataclasses import replace

fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), sharex=True, sharey=True)
angles = torch.linspace(0, 2 * math.pi, 17, dtype=torch.float64)[:-1]
ring = torch.stack([angles.cos(), angles.sin()], 1)  # (16, 2)
worst = {}  # kappa -> largest angle, in degrees
for ax, kappa in zip(axes, [1, 4, 25], strict=True):
    bowl = replace(
        S.quadratic(1.0, float(kappa)), extent=(-1.1, 1.1, -1.1, 1.1)
    )
    points = ring / bowl(ring).sqrt()[:, None] * 0.7  # on one level set
    direction = -points @ bowl.hessian  # -grad f, (16, 2)
    unit = direction / direction.norm(dim=1, keepdim=True)  # directions
    cos = F.cosine_similarity(direction, -points).clamp(-1, 1)
    angle = torch.rad2deg(torch.acos(cos)).max()
    plots.draw_surface(bowl, ax=ax)
    arrows = {"angles": "xy", "scale_units": "xy", "scale": 8}
    ax.quiver(*points.T, *unit.T, color=plots.OKABE_ITO[3], **arrows)
    ax.set(aspect="equal", title=f"κ = {kappa}: -∇f up to {angle:.0f}° off")
    worst[kappa] = angle.item()
plt.show()
print(", ".join(f"κ={k}: {v:.1f}°" for k, v in worst.items()))

# %%
# Reading the loss curve to set the step size
# -------------------------------------------
# *Observer la courbe d'erreur pour régler le pas d'apprentissage* (cs231n):
# too low a step and the loss barely moves; a good one drops quickly then keeps
# improving; too high, the loss stalls at a high value; far too high, cs231n
# draws it exploding. The network of Question 1 on MNIST, over 5 seeds:
base = Config(
    n_train=pick(full=10_000, quick_value=4_000),
    n_test=pick(full=None, quick_value=2_000),
    epochs=pick(full=2, quick_value=1),
)
labels = {"low": 0.01, "good": 1.0, "high": 20.0, "very high": 100.0}
table = sweep(
    {name: base.replace(lr=lr) for name, lr in labels.items()}, seeds=range(5)
)
fig, ax = plt.subplots(figsize=(7, 4))
for (name, result), lr in zip(table.items(), labels.values(), strict=True):
    mean, _ = result.curve("step_loss")  # mean over the seeds
    window = max(1, len(mean) // 40)  # a moving average shows the trend
    ax.plot(*plots.block_average(mean, window), label=f"{name}: ρ={lr:g}")
ax.axhline(math.log(10), color="gray", ls="--", lw=1, label="chance: log 10")
ax.set(xlabel="step (mini-batch of 64)", yscale="log")
ax.set(ylabel="training loss (moving average)")
ax.set_title("The loss curve tells which step size is wrong")
ax.legend()
plt.show()

# %%
# The order of the final training losses, over the 5 seeds, and what the
# very high step does:
check_order(
    "the low step ends above the good one",
    table["low"],
    table["good"],
    metric="train_loss",
)
good = max(table["good"].values("train_loss"))
high = min(table["high"].values("train_loss"))
check(  # 5 seeds against 5: all above by chance has probability 1/252
    "every seed of the high step ends above every seed of the good one",
    high > good,
    measured=f"lowest {high:.3g} against highest {good:.3g}",
)
wild = table["very high"]
lowest, highest = (
    min(wild.values("train_loss")),
    max(table["high"].values("train_loss")),
)
check(  # 5 seeds against 5: all above by chance has probability 1/252
    "every seed of the very high step ends above every seed of the high one",
    lowest > highest,
    measured=f"lowest {lowest:.3g} against highest {highest:.3g}",
    full_only=True,
)
jump = min(max(h.step_loss) / h.step_loss[0] for h in wild.histories)
check(
    "with the very high step, every seed's loss jumps to over 10 times its "
    "start, and no run diverges",
    jump > 10 and wild.diverged == 0,
    measured=f"smallest jump {jump:.0f} times; {wild.diverged} diverged",
)
table

# %%
# The very high step does not explode here: its loss leaps to many times
# its start within the first steps, then stays on a finite plateau far
# above the others. The sigmoids keep every hidden unit in (0, 1), so the
# scores stay finite, and a saturated unit passes back almost no gradient:
# the network stalls instead of blowing up.

# %%
# What to remember
# ----------------
# * Near a saddle point the gradient vanishes and plain descent crawls; in an
#   elongated bowl it zig-zags. Momentum and adaptive steps (next pages) answer
#   both.
# * Set the step size by reading the loss curve: too high a step may not
#   explode, it may stall far above the others.
#
# Further reading
# ---------------
# Chapter 8.2 of the Deep Learning book :cite:p:`goodfellow2016deep`, saddle
# points in high dimension :cite:p:`dauphin2014identifying`, and the cs231n
# notes on babysitting the learning process :cite:p:`cs231n`.
#
# Exercise
# --------
#
# **Exercise.** Predict first: near the saddle, the distance to the ridge
# grows by a factor :math:`1 + \rho` per step. With :math:`\rho = 0.2`
# instead of 0.1, how many times fewer steps does gradient descent need to
# escape from :math:`\varepsilon = 10^{-8}`? Run it and compare.

# %% [solution]
# **Solution.** The escape takes about :math:`\ln(1/\varepsilon) /
# \ln(1+\rho)` steps, so doubling :math:`\rho` divides it by
# :math:`\ln 1.2 / \ln 1.1 \approx 1.9`: a larger step crosses the flat
# region faster, as long as it stays stable along the steep direction.
faster = S.trajectory(S.saddle, partial(optim.SGD, lr=0.2), (1.5, 1e-8), 250)
steps_02 = int((S.saddle(faster) < -0.2).nonzero()[0])
print(f"{escape[1e-8]} steps at ρ=0.1, {steps_02} at ρ=0.2")
theory = math.log(1.2) / math.log(1.1)
print(f"ratio {escape[1e-8] / steps_02:.2f}, ln 1.2 / ln 1.1 = {theory:.2f}")

# sphinx_gallery_thumbnail_number = 3
