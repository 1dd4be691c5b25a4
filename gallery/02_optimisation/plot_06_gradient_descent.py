"""
Gradient descent and its limits
===============================

*Quels exemples utilise-t-on pour estimer le gradient ?* All the training
examples (batch gradient descent), a small subset (mini-batch SGD) or a single
one (online SGD). *Quel impact sur la descente ?* With few examples the
estimate is noisy but much cheaper: a compromise has to be found. We measure
both sides of it on MNIST: the noise of the gradient estimate against the
batch size, and the wall time of an epoch.

Then the lecture's *limites de la descente de gradient*: saddle points where
the gradient vanishes, a gradient that does not point to the minimum unless the
level sets are circles, and a step size to choose by reading the loss curve, as
cs231n teaches. The MNIST runs use a few thousand training images and a few
epochs so that the page runs in a couple of minutes on a CPU.
"""

# %%
# How noisy is a mini-batch gradient?
# -----------------------------------
# For the network of Question 1 (784-120-80-10, sigmoid, after one epoch of
# training), we compute the gradient :math:`g` on all :math:`n` examples, then
# many mini-batch gradients :math:`g_B` on :math:`B` examples drawn without
# replacement. Sampling theory predicts
# :math:`\mathbb{E}\|g_B - g\|^2 = \frac{\sigma^2}{B}\frac{n-B}{n-1}`, where
# :math:`\sigma^2` is the same quantity for :math:`B = 1`.
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from mla_course import plots
from mla_course.experiments import Config, load_data, run
from mla_course.utils import pick

plots.use_style()
n = pick(full=10_000, quick_value=2_000)
config = Config(n_train=n, n_test=pick(full=None, quick_value=2_000), lr=0.5, epochs=1)
_, model = run(config, seed=0, return_model=True)
(X, y), _ = load_data(config)


def gradient(idx):
    model.zero_grad()
    F.cross_entropy(model(X[idx]), y[idx]).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])  # (n_parameters,)


full = gradient(torch.arange(n))
generator = torch.Generator().manual_seed(0)
batch_sizes = [1, 4, 16, 64, 256, 1024]
draws = pick(full=100, quick_value=20)
error, cosine, seconds = [], [], []
for B in batch_sizes:
    count = draws * (5 if B == 1 else 1)  # sigma^2 sets every prediction: estimate it well
    start = time.perf_counter()
    G = torch.stack([gradient(torch.randperm(n, generator=generator)[:B]) for _ in range(count)])
    seconds.append((time.perf_counter() - start) / count)  # one gradient of B examples
    error.append(((G - full) ** 2).sum(1).mean().item())
    cosine.append(F.cosine_similarity(G, full[None]).mean().item())
predicted = [error[0] / B * (n - B) / (n - 1) for B in batch_sizes]
epoch_time = [n / B * s for B, s in zip(batch_sizes, seconds, strict=True)]
print(f"{'B':>5} {'E|g_B-g|^2':>11} {'predicted':>10} {'cosine':>7} {'epoch time (s)':>15}")
for row in zip(batch_sizes, error, predicted, cosine, epoch_time, strict=True):
    print("{:>5} {:>11.4f} {:>10.4f} {:>7.3f} {:>15.2f}".format(*row))

# %%
# The error falls as :math:`1/B`, as predicted: 64 examples give a gradient
# whose direction is already close to the full one (cosine above). But the
# cost of an *epoch* falls too when :math:`B` grows, because one matrix
# product on :math:`B` rows costs much less than :math:`B` products on one row.
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
ax1.loglog(batch_sizes, error, "o-", label="measured")
ax1.loglog(batch_sizes, predicted, "k:", label=r"$\sigma^2/B \cdot (n-B)/(n-1)$")
ax1.set(
    xlabel="batch size B",
    ylabel=r"$\mathbb{E}\,\|g_B - g\|^2$",
    title="Noise of the mini-batch gradient",
)
ax1.legend()
ax2.loglog(batch_sizes, epoch_time, "o-")
ax2.set(
    xlabel="batch size B", ylabel="seconds", title=f"Time of the gradients of one epoch (n={n})"
)
plt.show()

# %%
# Full batch, mini-batch, one example
# -----------------------------------
# The same network trained from scratch on fewer images (the number is printed
# below), each way with a step size that suits it. A full-batch step uses all
# :math:`n` examples, so it needs many epochs; online SGD takes :math:`n` steps
# per epoch, each cheap but very noisy. The training loss is measured on the
# whole training split after each epoch.
small = config.replace(
    n_train=pick(full=2_000, quick_value=500), epochs=pick(full=3, quick_value=2)
)
runs = {
    f"full batch (B={small.n_train}), ρ=1": small.replace(batch_size=small.n_train, lr=1.0),
    "mini-batch B=64, ρ=0.5": small.replace(batch_size=64, lr=0.5),
    "one example B=1, ρ=0.02": small.replace(batch_size=1, lr=0.02),
}
histories = {label: run(c, seed=0) for label, c in runs.items()}
print(f"{small.n_train} training images, {small.epochs} epochs")
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
for label, h in histories.items():
    ax1.plot(range(1, small.epochs + 1), h.train_loss, "o-", label=label)
    ax2.plot(h.time, h.train_loss, "o-", label=label)
    print(
        f"{label}: train loss {h.train_loss[-1]:.3f}, test accuracy {100 * h.test_acc[-1]:.1f}%, "
        f"{h.time[-1]:.2f} s of training"
    )
ax1.set(xlabel="epoch", ylabel="training loss", title="Per epoch")
ax2.set(xlabel="training time (s)", xscale="log", title="Per second of training")
ax1.legend()
plt.show()

# %%
# Per epoch, one example at a time learns the most: it takes :math:`n` steps
# where full batch takes one. But compare the curves at equal *time*: each of
# those steps costs nearly as much as a vectorised step on 64 examples. That is
# the compromise the lecture speaks of. (BatchNorm adds another constraint: it
# needs batches large enough for their statistics, see chapter 3.)
#
# Saddle points: the gradient vanishes
# ------------------------------------
# *Les minima locaux et les points selles : gradients nuls, très fréquent en
# grande dimension.* On :math:`f(\theta) = \frac12\theta_1^2 - \frac12\theta_2^2
# + \frac14\theta_2^4`, the origin is a saddle between two minima. Gradient
# descent started at a distance :math:`\varepsilon` from the ridge
# :math:`\theta_2 = 0` slows down near the saddle, for a number of steps that
# grows like :math:`\log(1/\varepsilon)`.
from functools import partial

from mla_course import optim
from mla_course import surfaces as S

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
for eps in [1e-1, 1e-4, 1e-8]:
    path = S.trajectory(S.saddle, partial(optim.SGD, lr=0.1), (1.5, eps), 250)
    loss = S.saddle(path)
    escaped = int((loss < -0.2).nonzero()[0]) if (loss < -0.2).any() else None
    print(
        f"start at distance {eps:g} from the ridge: near a minimum (f < -0.2) after {escaped} steps"
    )
    ax1.plot(path[:, 0], path[:, 1], ".-", ms=3, label=f"ε = {eps:g}")
    ax2.semilogy(torch.hypot(path[:, 0], path[:, 1] ** 3 - path[:, 1]), label=f"ε = {eps:g}")
S.draw(S.saddle, ax=ax1)
ax1.set_title("Gradient descent (ρ=0.1) near a saddle point")
ax1.legend(loc="upper left")
ax2.set(
    xlabel="step",
    ylabel=r"$\|\nabla f(\theta_k)\|$",
    title="The gradient nearly vanishes near the saddle",
)
ax2.legend()
plt.show()

# %%
# The gradient does not point to the minimum
# ------------------------------------------
# *La direction du gradient n'est pas optimale, sauf si l'ellipse est un
# cercle.* On a quadratic bowl whose Hessian has eigenvalues 1 and
# :math:`\kappa`, we draw :math:`-\nabla f` on a ring of points and measure its
# angle with the direction of the minimum.
import math
from dataclasses import replace

fig, axes = plt.subplots(1, 3, figsize=(12, 4.2), sharex=True, sharey=True)
angles = torch.linspace(0, 2 * math.pi, 17, dtype=torch.float64)[:-1]
ring = torch.stack([angles.cos(), angles.sin()], 1)  # (16, 2)
for ax, kappa in zip(axes, [1, 4, 25], strict=True):
    bowl = replace(S.quadratic(1.0, float(kappa)), extent=(-1.1, 1.1, -1.1, 1.1))
    points = ring / bowl(ring).sqrt()[:, None] * 0.7  # on one level set
    direction = -points @ bowl.hessian  # -grad f, (16, 2)
    unit = direction / direction.norm(dim=1, keepdim=True)  # arrows show directions only
    angle = torch.rad2deg(torch.acos(F.cosine_similarity(direction, -points).clamp(-1, 1))).max()
    S.draw(bowl, ax=ax)
    ax.quiver(*points.T, *unit.T, color=plots.OKABE_ITO[3], angles="xy", scale_units="xy", scale=8)
    ax.set(
        aspect="equal",
        title=f"κ = {kappa}: -∇f is up to {angle:.0f}° off",
    )
    print(
        f"kappa = {kappa}: largest angle between -grad f and the direction of the minimum {angle:.1f} deg"
    )
plt.show()

# %%
# Reading the loss curve to set the step size
# -------------------------------------------
# *Observer la courbe d'erreur pour régler le pas d'apprentissage* (cs231n):
# too low a step and the loss barely moves; a good one drops quickly then keeps
# improving; too high, the loss stalls at a high value (here above chance);
# far too high, it explodes. The network of Question 1 on MNIST:
from mla_course.experiments import sweep

base = Config(
    n_train=pick(full=10_000, quick_value=2_000),
    n_test=pick(full=None, quick_value=2_000),
    epochs=pick(full=2, quick_value=1),
)
labels = {"low": 0.01, "good": 1.0, "high": 20.0, "very high": 100.0}
table = sweep({f"{name}: ρ={lr:g}": base.replace(lr=lr) for name, lr in labels.items()}, seeds=[0])
fig, ax = plt.subplots(figsize=(7, 4))
for label, result in table.items():
    steps = result.histories[0].step_loss
    window = max(1, len(steps) // 40)  # a moving average shows the trend
    ax.plot(*plots.block_average(steps, window), label=label)
ax.axhline(math.log(10), color="gray", ls="--", lw=1, label="chance: log 10")
ax.set(
    xlabel="step (mini-batch of 64)",
    ylabel="training loss (moving average)",
    yscale="log",
    title="The loss curve tells which step size is wrong",
)
ax.legend()
plt.show()
final = {name: r.mean("train_loss") for name, r in zip(labels, table.values(), strict=True)}
assert final["good"] < min(final["low"], final["high"]) and final["high"] < final["very high"]
table

# %%
# What to remember
# ----------------
# * A mini-batch gradient is an unbiased estimate whose error falls as
#   :math:`1/B`; its cost per example falls with :math:`B` too, until the
#   hardware is saturated. Mini-batches of a few dozen to a few hundred are the
#   usual compromise.
# * Near a saddle point the gradient vanishes and plain descent crawls; in an
#   elongated bowl it zig-zags. Momentum and adaptive steps (next pages) answer
#   both.
# * Set the step size by reading the loss curve.
#
# Further reading
# ---------------
# Chapter 8 of the Deep Learning book :cite:p:`goodfellow2016deep`, saddle
# points in high dimension :cite:p:`dauphin2014identifying`, and the cs231n
# notes on babysitting the learning process :cite:p:`cs231n`.

# sphinx_gallery_thumbnail_number = 3
