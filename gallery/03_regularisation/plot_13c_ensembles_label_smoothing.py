"""
Ensembles and noise on the outputs
==================================

Among the *autres méthodes de régularisation* the lecture lists *méthodes
d'ensemble* and *injection de bruit (en entrée ou en sortie)*. Dropout,
two pages back, was read as an ensemble of networks sharing their weights;
here we build a real one: train :math:`k` networks from different seeds
and average their predicted probabilities
:cite:p:`hansen1990neural,lakshminarayanan2017simple`. Noise on the
outputs is label smoothing :cite:p:`szegedy2016rethinking`: the target of
each image is no longer "certainly this digit" but a little probability
on every class. Both are measured in the over-fitting setting of this
chapter (:data:`~mla_course.config.OVERFITTING`: 500 training images, a
784-256-256-10 ReLU network, 40 epochs of SGD with momentum, accuracy on
the first 2,000 test images).
"""

# %%
# Twelve networks, three ensembles
# --------------------------------
# One configuration, twelve seeds: the seed sets the initial weights and
# the order of the mini-batches, nothing else. We group them into three
# disjoint ensembles of four, so that the gain of an ensemble over its own
# members is measured three times, and its noise with it.
import statistics

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

from mla_course import plots
from mla_course.claims import check, check_order
from mla_course.config import OVERFITTING
from mla_course.runs import load_data, sweep, train_network
from mla_course.settings import pick
from mla_course.train import predict

plots.use_style()
base = OVERFITTING.replace(epochs=pick(full=OVERFITTING.epochs, quick_value=5))
k, groups = 4, 3
seeds = range(k * groups)
sweep({"one network": base}, seeds=seeds)  # the twelve trained together
_, (X_test, y_test) = load_data(base)
probs = torch.stack(  # (networks, images, classes)
    [
        torch.softmax(predict(train_network(base, s)[1], X_test), 1)
        for s in seeds
    ]
)


# %%
# Each network and each ensemble scored on the test images:


def scores(p):
    """Test accuracy and cross-entropy of probabilities ``(images, 10)``."""
    nll = F.nll_loss(p.clamp_min(1e-12).log(), y_test).item()
    return (p.argmax(1) == y_test).float().mean().item(), nll


members = [
    [scores(p) for p in probs[g * k : (g + 1) * k]] for g in range(groups)
]
ensembles = [scores(probs[g * k : (g + 1) * k].mean(0)) for g in range(groups)]
for g in range(groups):
    accs = [a for a, _ in members[g]]
    print(
        f"ensemble {g + 1}: {ensembles[g][0]:.2%} (its members: "
        f"{min(accs):.2%} to {max(accs):.2%})"
    )

# %%
# Averaging helps
# ---------------
# Each ensemble beats the mean of its own four members, in accuracy and in
# loss: networks that over-fit differently make different confident
# mistakes, and the average tempers them. For the loss this cannot fail
# (the cross-entropy is convex in the probabilities, so the loss of the
# average is at most the average of the losses, as ``tests/`` checks); for
# the accuracy it is an empirical fact, checked against its noise: the
# gain of each ensemble over its own members, over the three ensembles.
mean_member = [[sum(m[i] for m in ms) / k for i in (0, 1)] for ms in members]
ensemble_acc = [e[0] for e in ensembles]
check_order(
    f"an ensemble of {k} beats its members' mean test accuracy",
    ensemble_acc,
    [m[0] for m in mean_member],
    paired=True,
    full_only=True,
)
print(
    "loss of the ensemble <= mean loss of its members:",
    ", ".join(
        f"{e[1]:.3f} <= {m[1]:.3f}"
        for e, m in zip(ensembles, mean_member, strict=True)
    ),
)

# %%
# The ensemble of the first :math:`1, 2, \dots, k` members of each group,
# averaged over the three groups, to see what each added member brings.
sizes = range(1, k + 1)
curve = torch.tensor(
    [
        [scores(probs[g * k : g * k + n].mean(0)) for g in range(groups)]
        for n in sizes
    ]
).mean(1)  # (sizes, 2): accuracy, loss
fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
for ax, i, what in zip(
    axes, (0, 1), ("test accuracy", "test loss"), strict=True
):
    ax.plot(list(sizes), curve[:, i] * (100 if i == 0 else 1), marker="o")
    ax.set(xlabel="networks averaged", ylabel=what, xticks=list(sizes))
    ax.set_title(f"{what.split(' (')[0].capitalize()} of the ensemble")
plt.show()

# %%
# Noise on the outputs: label smoothing
# -------------------------------------
# Cross-entropy on a one-hot target rewards ever larger scores: the loss
# reaches 0 only with a probability of exactly 1. Label smoothing replaces
# the target :math:`y^*` by :math:`(1 - \varepsilon)\,y^* +
# \varepsilon / K` over the :math:`K` classes, as the package's training
# loss does when ``Config(label_smoothing=eps)`` is set:
from mla_course import runs
from mla_course.source import show_source

show_source(runs.TrainingLoss)

# %%
# Against the network trained on one-hot targets, over 3 seeds. The
# test loss of the over-fitting network climbs back after a few epochs
# because it grows over-confident; label smoothing bounds that confidence,
# and here it gains accuracy too.
eps = 0.1
table = sweep(
    {
        "one-hot": base,
        f"smoothed, eps={eps}": base.replace(label_smoothing=eps),
    }
)
hard, soft = table.values()
check_order(
    "label smoothing ends with a lower test loss",
    hard,
    soft,
    metric="test_loss",
    full_only=True,
)
check_order(
    "label smoothing ends with a higher test accuracy",
    soft,
    hard,
    full_only=True,
)
axes = plots.plot_table_curves(table)
axes[2].set_ylim(bottom=60)
plt.show()
table

# %%
# How sure are the networks?
# --------------------------
# With smoothed targets the loss is lowest when the network gives the
# true class the probability :math:`1 - \varepsilon + \varepsilon / K`,
# not 1: on its own training images the smoothed network settles there.
# On the test images, the one-hot network is the more sure of itself of
# the two, mistakes included (3 seeds each).


def softmax_top(net, X):
    """Mean over the images ``X`` of the largest predicted probability."""
    return torch.softmax(predict(net, X), 1).max(1).values.mean().item()


(X, y), _ = load_data(base)
target = 1 - eps + eps / 10
sure = {}  # label: per seed, mean top probability on (train, test) images
for label, config in zip(
    table, (base, base.replace(label_smoothing=eps)), strict=True
):
    nets = [train_network(config, seed)[1] for seed in table[label].seeds]
    top = [[softmax_top(n, data) for data in (X, X_test)] for n in nets]
    sure[label] = top
    a, b = (statistics.mean(t[i] for t in top) for i in (0, 1))
    print(f"{label:>18}: mean top probability {a:.3f} train, {b:.3f} test")
smooth = sure[f"smoothed, eps={eps}"]
gap = max(abs(t[0] - target) for t in smooth)
claim = f"every smoothed network's training confidence is near {target:.2f}"
check(claim, gap < 0.03, measured=f"largest gap {gap:.3f}", full_only=True)
on_test = [[t[1] for t in sure[k]] for k in table]
check_order(
    "on test images the one-hot network is the more confident",
    *on_test,
    metric="top",
    paired=True,
)

# %%
# What to remember
# ----------------
# * Averaging the probabilities of networks trained from different seeds
#   improves on its members, in loss always (convexity) and here in
#   accuracy; it costs :math:`k` trainings and :math:`k` predictions.
# * Label smoothing is noise on the outputs: the network can no longer
#   push its probabilities to 1, which curbs over-confidence.
#
# Further reading
# ---------------
# Ensembles :cite:p:`hansen1990neural,lakshminarayanan2017simple`, label
# smoothing :cite:p:`szegedy2016rethinking` and what it does to the
# representations :cite:p:`muller2019when`, and chapter 7 of
# :cite:p:`goodfellow2016deep`.
#
# Exercises
# ---------
#
# **Exercise 1.** Predict first: with :math:`\varepsilon = 0.3`, what
# mean top probability will the network reach on its training images?
# Then train it and measure.
eps3 = 0.3
config3 = base.replace(label_smoothing=eps3)

# %% [solution]
# **Solution.** The loss is lowest at :math:`1 - 0.3 + 0.3 / 10 = 0.73`,
# and the network, which fits its 500 images, settles close to it.
_, net3 = train_network(config3, seed=0)
top3 = softmax_top(net3, X)
check(
    f"with eps = {eps3} the training confidence is near "
    f"{1 - eps3 + eps3 / 10:.2f}",
    abs(top3 - (1 - eps3 + eps3 / 10)) < 0.03,
    measured=f"{top3:.3f}",
    full_only=True,
)

# sphinx_gallery_thumbnail_number = 2
