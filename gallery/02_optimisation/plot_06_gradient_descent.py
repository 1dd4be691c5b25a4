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

The lecture's symbols, the book's names and torch's arguments are set side by
side on the :ref:`notation` page; French terms are in the :ref:`glossary`.
"""

# %%
# The update rule
# ---------------
# The package's gradient step, the one the optimiser class
# :class:`~mla_course.optim.SGD` and the batched engine both call. Only the
# gradient ``g`` changes with the batch size.
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from mla_course import optim, plots
from mla_course.claims import check, check_order
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
from mla_course.runs import load_data, sweep, train_network

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
i64 = batch_sizes.index(64)
check(
    "one gradient on 64 examples costs less than 5 gradients on one, so an "
    "epoch at B = 64 is over 10 times cheaper than at B = 1",
    seconds[i64] < 5 * seconds[0] and epoch_time[0] > 10 * epoch_time[i64],
    measured=f"{1e3 * seconds[i64]:.2f} ms vs {1e3 * seconds[0]:.2f} ms per "
    f"gradient; epochs {epoch_time[0]:.2f} s vs {epoch_time[i64]:.2f} s",
)

# %%
# The error falls as :math:`1/B`, as sampling theory says (an identity, which
# the book's tests check; the table shows the two columns side by side), and
# the cosine with the full gradient rises towards 1. But the cost of an
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
# printed below), each way with a step size that suits it, over 5 seeds. A
# full-batch step uses all :math:`n` examples, so it takes one step per
# epoch; online SGD takes :math:`n` steps per epoch, each cheap but very
# noisy. The training loss is measured on the whole training split after each
# epoch, and each history records the training time up to then.
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
table = sweep(runs, seeds=range(5))
print(f"{small.n_train} training images, {small.epochs} epochs")
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
for label, result in table.items():
    loss, _ = result.curve("train_loss")  # mean over the seeds
    seconds, _ = result.curve("time")
    ax1.plot(range(1, small.epochs + 1), loss, "o-", label=label)
    ax2.semilogx(seconds, loss, "o-", label=label)
ax1.set(xlabel="epoch", ylabel="training loss", title="Per epoch")
ax2.set(xlabel="training time (s)", title="Per second")
ax1.legend()
plt.show()

# %%
# The order after the last epoch, and the time it took:
full_batch, mini, online = table.values()
check_order("B = 64 ends above online SGD", mini, online, metric="train_loss")
check_order(
    "full batch ends above B = 64",
    full_batch,
    mini,
    metric="train_loss",
    full_only=True,  # 16 steps of B = 64 on 500 images: still on the plateau
)
first_epoch = min(h.time[0] for h in online.histories)
all_epochs = max(mini.values("time"))
check(
    f"online SGD's first epoch takes longer than the {small.epochs} epochs "
    "of B = 64",
    first_epoch > all_epochs,
    measured=f"{first_epoch:.2f} s against {all_epochs:.2f} s",
)

# %%
# Per epoch, one example at a time learns the most: it takes :math:`n` steps
# where full batch takes one. But each of those steps costs more than a fifth
# of a vectorised step on 64 examples (the first table): per second of
# computation (right), the mini-batch has run all its epochs before online
# SGD ends its first. That is the compromise the lecture speaks of.
# (BatchNorm adds another constraint: it needs batches large enough for
# their statistics, see chapter 3.)


# %%
# What to remember
# ----------------
# * A mini-batch gradient is an unbiased estimate whose error falls as
#   :math:`1/B`; its cost per example falls with :math:`B` too (the first
#   table). Mini-batches of a few dozen to a few hundred are the usual
#   compromise.
# * Compare ways of training per epoch *and* per second: one example per
#   step learns most per epoch, but here its first epoch took longer than
#   all the epochs of the run at :math:`B = 64`.
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
print(f"B = {B}: cosine {measured:.4f}, predicted {expected:.4f}")
