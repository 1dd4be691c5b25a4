"""
Gradient descent: how many examples per step?
=============================================

*Quels exemples utilise-t-on pour estimer le gradient ?* All the training
examples (batch gradient descent), a small subset (mini-batch SGD) or a single
one (online SGD). *Quel impact sur la descente ?* With few examples the
estimate is noisy but much cheaper: a compromise has to be found. We measure
both sides of it on MNIST: the noise of the gradient estimate against the
batch size, the time of an epoch, and the training loss of the three ways.
The runs use a few thousand training images and a few epochs, so that the
page runs in seconds on a CPU. The :doc:`next page
<plot_06b_gradient_descent_limits>` turns to the limits of gradient descent.
"""

# %%
# The update rule
# ---------------
# The package's gradient step, the one the optimiser class
# :class:`~mla_course.optim.SGD` and the batched engine both call. Only the
# gradient ``g`` changes with the batch size.
import itertools
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from mla_course import optim, plots
from mla_course.claims import check
from mla_course.settings import pick
from mla_course.source import show_source

plots.use_style()
show_source(optim.sgd_update)

# %%
# How noisy is a mini-batch gradient?
# -----------------------------------
# For the network of Question 1 (784-120-80-10, sigmoid, after one epoch of
# training), we compute the gradient :math:`g` on all :math:`n` examples,
# then many mini-batch gradients :math:`g_B` on :math:`B` examples drawn
# without replacement. Sampling theory predicts
# :math:`\mathbb{E}\|g_B - g\|^2 = \frac{\sigma^2}{B}\frac{n-B}{n-1}`,
# where :math:`\sigma^2` is the same quantity for :math:`B = 1`.
from mla_course.config import Config
from mla_course.runs import load_data, train_network

n = pick(full=10_000, quick_value=2_000)
config = Config(n_train=n, n_test=pick(full=None, quick_value=2_000), lr=0.5)
_, model = train_network(config.replace(epochs=1), seed=0)
(X, y), _ = load_data(config)


def gradient(idx):
    """The gradient of the loss on the examples idx, flattened."""
    model.zero_grad()
    F.cross_entropy(model(X[idx]), y[idx]).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()])


full = gradient(torch.arange(n))
generator = torch.Generator().manual_seed(0)
batch_sizes = [1, 4, 16, 64, 256, 1024]
draws = pick(full=100, quick_value=20)
error, cosine, seconds = [], [], []
for B in batch_sizes:
    count = draws * (5 if B == 1 else 1)  # sigma^2 sets every prediction
    start = time.perf_counter()
    G = torch.stack(
        [
            gradient(torch.randperm(n, generator=generator)[:B])
            for _ in range(count)
        ]
    )
    seconds.append((time.perf_counter() - start) / count)  # one gradient
    error.append(((G - full) ** 2).sum(1).mean().item())
    cosine.append(F.cosine_similarity(G, full[None]).mean().item())

# %%
# The error against the prediction, the cosine between :math:`g_B` and
# :math:`g`, and the time of one epoch of gradients (:math:`n/B` of them):
predicted = [error[0] / B * (n - B) / (n - 1) for B in batch_sizes]
epoch_time = [n / B * s for B, s in zip(batch_sizes, seconds, strict=True)]
print("    B  E|g_B-g|^2  predicted  cosine  epoch (s)")
for row in zip(batch_sizes, error, predicted, cosine, epoch_time, strict=True):
    print("{:>5} {:>11.4f} {:>10.4f} {:>7.3f} {:>10.2f}".format(*row))
worst = max(abs(e / p - 1) for e, p in zip(error, predicted, strict=True))
check(
    "the error follows sigma^2/B (n-B)/(n-1) within 30 % at every B",
    worst < 0.3,
    measured=f"largest relative gap {100 * worst:.0f} %",
)
check(
    "the cosine with the full gradient grows with B",
    all(a < b for a, b in itertools.pairwise(cosine)),
    measured=", ".join(f"{c:.2f}" for c in cosine),
)
i64 = batch_sizes.index(64)
check(
    "one gradient on 64 examples costs less than 5 gradients on one, so an "
    "epoch at B = 64 is over 10 times cheaper than at B = 1",
    seconds[i64] < 5 * seconds[0] and epoch_time[0] > 10 * epoch_time[i64],
    measured=f"{1e3 * seconds[i64]:.2f} ms vs {1e3 * seconds[0]:.2f} ms per "
    f"gradient; epochs {epoch_time[0]:.2f} s vs {epoch_time[i64]:.2f} s",
)

# %%
# The error falls as :math:`1/B`, as predicted: 64 examples give a gradient
# whose direction is already close to the full one. But the cost of an
# *epoch* falls too when :math:`B` grows, because one matrix product on
# :math:`B` rows costs much less than :math:`B` products on one row.
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
ax1.loglog(batch_sizes, error, "o-", label="measured")
ax1.loglog(
    batch_sizes, predicted, "k:", label=r"$\sigma^2/B \cdot (n-B)/(n-1)$"
)
ax1.set(xlabel="batch size B", ylabel=r"$\mathbb{E}\,\|g_B - g\|^2$")
ax1.set_title("Noise of the mini-batch gradient")
ax1.legend()
ax2.loglog(batch_sizes, epoch_time, "o-")
ax2.set(xlabel="batch size B", ylabel="seconds")
ax2.set_title(f"Time of the gradients of one epoch (n={n})")
plt.show()

# %%
# Full batch, mini-batch, one example
# -----------------------------------
# The same network trained from scratch on fewer images (the number is
# printed below), each way with a step size that suits it. A full-batch step
# uses all :math:`n` examples, so it takes one step per epoch; online SGD
# takes :math:`n` steps per epoch, each cheap but very noisy. The training
# loss is measured on the whole training split after each epoch.
small = config.replace(
    n_train=pick(full=2_000, quick_value=500),
    epochs=pick(full=3, quick_value=2),
)
runs = {
    f"full batch (B={small.n_train}), ρ=1": small.replace(
        batch_size=small.n_train, lr=1.0
    ),
    "mini-batch B=64, ρ=0.5": small.replace(batch_size=64, lr=0.5),
    "one example B=1, ρ=0.02": small.replace(batch_size=1, lr=0.02),
}
loss = {
    label: train_network(c, seed=0)[0].train_loss for label, c in runs.items()
}
print(f"{small.n_train} training images, {small.epochs} epochs")
fig, ax = plt.subplots(figsize=(7, 4))
for label, curve in loss.items():
    ax.plot(range(1, small.epochs + 1), curve, "o-", label=label)
ax.set(xlabel="epoch", ylabel="training loss", title="Per epoch")
ax.legend()
plt.show()
full_batch, mini, online = loss.values()
check(
    "after every epoch online SGD has the lowest training loss; after the "
    "last, full batch has the highest",
    all(o < min(m, f) for f, m, o in zip(*loss.values(), strict=True))
    and online[-1] < mini[-1] < full_batch[-1],
    measured=f"last epoch: full {full_batch[-1]:.3f}, B=64 {mini[-1]:.3f}, "
    f"B=1 {online[-1]:.3f}",
)

# %%
# Per epoch, one example at a time learns the most: it takes :math:`n` steps
# where full batch takes one. But each of those steps costs nearly as much
# as a vectorised step on 64 examples (the first table): per second of
# computation, the picture changes. That is the compromise the lecture
# speaks of. (BatchNorm adds another constraint: it needs batches large
# enough for their statistics, see chapter 3.)


# %%
# What to remember
# ----------------
# * A mini-batch gradient is an unbiased estimate whose error falls as
#   :math:`1/B`; its cost per example falls with :math:`B` too, until the
#   hardware is saturated. Mini-batches of a few dozen to a few hundred are
#   the usual compromise.
# * Compare ways of training per epoch *and* per unit of computation: one
#   example per step learns most per epoch, not per second.
#
# Further reading
# ---------------
# Chapter 8.1 of the Deep Learning book :cite:p:`goodfellow2016deep` on
# mini-batch sizes.
#
# Exercise
# --------
#
# **Exercise.** Predict first: the mean cosine between :math:`g_B` and
# :math:`g` is about :math:`\|g\| / \sqrt{\|g\|^2 + \mathbb{E}\|g_B -
# g\|^2}`. Using the predicted error, what cosine do you expect at
# :math:`B = 4096`? Then draw a few gradients on 4096 examples and measure it.

# %% [solution]
# **Solution.** The error at :math:`B = 4096` is
# :math:`\sigma^2/4096 \cdot (n-4096)/(n-1)`, far below :math:`\|g\|^2`,
# so the cosine is close to 1; the measurement agrees with the prediction.
B = min(4096, n // 2)
error_B = error[0] / B * (n - B) / (n - 1)
expected = (full.norm() ** 2 / (full.norm() ** 2 + error_B)).sqrt().item()
G = torch.stack(
    [gradient(torch.randperm(n, generator=generator)[:B]) for _ in range(10)]
)
measured = F.cosine_similarity(G, full[None]).mean().item()
check(
    f"at B = {B}, the cosine is the predicted one within 0.02",
    abs(measured - expected) < 0.02,
    measured=f"cosine {measured:.4f}, predicted {expected:.4f}",
)
