"""
Batch normalisation: small batches, test time, other data
=========================================================

*Est-ce toujours adapté ?* Batch norm takes its statistics from the
mini-batch. We measure what follows: small batches, the statistics to use
at test time (*Quels paramètres utiliser en test ?*), and test data unlike
the training data (*Que se passe-t-il si la distribution des données en
test est très différente ?*), with AdaBN :cite:p:`li2018adaptive`.
"""

import copy
import statistics

import matplotlib.pyplot as plt
import torch

from mla_course import plots
from mla_course.claims import (
    check,
    check_order,
    check_unresolved,
)
from mla_course.config import Config
from mla_course.layers import BatchNorm1d, adapt_batchnorm
from mla_course.runs import load_data, sweep, train_network
from mla_course.settings import pick
from mla_course.source import show_source
from mla_course.train import evaluate

plots.use_style()

# %%
# Sensitivity to the batch size
# -----------------------------
# The statistics of a small batch are noisy estimates of the population's.
# We train ReLU networks (He initialisation) for one epoch over the same
# images, with batches of 2 to 128, 3 seeds each. The step grows in
# proportion to the batch, 0.1 for a batch of 32 (the linear scaling rule
# of :cite:t:`goyal2017accurate`): without BN each image then moves the
# weights about as much whatever the batch size. No step is tuned: the
# orders below hold at the steps of this rule.
small = pick(full={}, quick_value={"n_test": 2000})  # quick: fewer images
base = Config(hidden=(100,) * 3, activation="relu", init="kaiming_uniform")
base = base.replace(epochs=1, n_train=pick(5000, 500), **small)
sizes = pick(full=[2, 8, 32, 128], quick_value=[2, 8])
configs = {
    (bn, bs): base.replace(batch_norm=bn, batch_size=bs, lr=0.1 * bs / 32)
    for bn in (None, "before")
    for bs in sizes
}
labels = [f"{'BN' if bn else 'no BN'}, batch {bs}" for bn, bs in configs]
table = sweep(dict(zip(labels, configs.values(), strict=True)), range(3))
res = dict(zip(configs, table.values(), strict=True))  # (bn, bs) -> Result
table

# %%
# A diverged run (the loss became infinite) is counted in the table, never
# averaged: the figure plots the mean of the finite runs and marks a batch
# size where some diverged. With batches of 2, batch norm is far behind,
# while the same network without it is not resolved from its run with
# batches of 8.
no, bn = res[None, 2], res["before", 2]
check_order("with batches of 2, no BN beats BN", no, bn)
check_order("with BN, batches of 8 beat batches of 2", res["before", 8], bn)
no8 = res[None, 8]
claim = "no BN, batch 2 against 8: below what 3 seeds resolve"
check_unresolved(claim, no, no8, full_only=True)
fig, ax = plt.subplots(figsize=(5.5, 3.5))
for bn in (None, "before"):
    r = [res[bn, bs] for bs in sizes]
    mean, sem = [100 * x.mean() for x in r], [100 * x.sem() for x in r]
    label = "with BN" if bn else "without BN"
    ax.errorbar(sizes, mean, sem, marker="o", capsize=3, label=label)
    for bs, x in zip(sizes, r, strict=True):
        if x.diverged:
            at, text = (bs, 100 * x.mean()), f"{x.diverged} diverged"
            ax.annotate(text, at, (-70, 12), textcoords="offset points")
ax.set(xscale="log", xlabel="batch size", ylabel="test accuracy (%)")
ax.set_title(f"ReLU MLP, one epoch of {base.train_size} images (± s.e.)")
ax.set_xticks(sizes, [str(b) for b in sizes])
ax.legend()
plt.show()

# %%
# With a batch of 2 the layer has almost nothing left to pass on: two
# values normalised by their own mean and variance always become
# :math:`-1` and :math:`+1` (up to :math:`\epsilon`), whatever they were.
pair = torch.tensor([[0.1, 5.0, -2.0], [0.2, 90.0, 7.0]])  # (batch, units)
out = BatchNorm1d(3, affine=False)(pair)
print(out)

# %%
# Quels paramètres utiliser en test ?
# -----------------------------------
# *Ceux estimés sur la base d'apprentissage (avec une moyenne glissante
# par exemple)*: the running averages. We train the sigmoid network of the
# previous page, BN before each sigmoid (batches of 60, 3 epochs of 20,000
# images), with the step of the grid 0.3, 1, 3 that is best on a
# validation split (the last 10,000 training images; seed 0), then 3
# seeds at that step. We compare the running
# averages with the statistics of each test batch itself: a prediction then
# depends on the rest of its batch, and a batch of one class has a mean
# that is not the population's.
net = Config(hidden=(100,) * 3, batch_size=60, epochs=pick(3, 1), **small)
net = net.replace(n_train=pick(20_000, 3000), holdout=10_000)
on_val = net.replace(batch_norm="before", evaluate_on="validation")
grid = {f"{lr:g}": on_val.replace(lr=lr) for lr in (0.3, 1, 3)}
lr = float(sweep(grid, seeds=[0]).best())  # on validation
print(f"step {lr:g}")
net = net.replace(batch_norm="before", lr=lr)
models = [train_network(net, seed)[1] for seed in range(3)]
_, (X_test, y_test) = load_data(net)
_, (X_val, y_val) = load_data(net.replace(evaluate_on="validation"))

# %%
# Each test batch normalised with its own statistics, against the running
# averages (``model.eval()``):


@torch.no_grad()
def with_batch_statistics(model, batch_size):
    """Test accuracy when each test batch is normalised by its own stats."""
    saved = copy.deepcopy(model.state_dict())  # train() moves running stats
    model.train()  # batch statistics (no dropout in this network)
    if batch_size == "digit":
        batches = [
            (X_test[y_test == c], y_test[y_test == c]) for c in range(10)
        ]
    else:
        xs, ts = X_test.split(batch_size), y_test.split(batch_size)
        batches = zip(xs, ts, strict=True)
    correct = sum((model(x).argmax(1) == t).sum().item() for x, t in batches)
    model.load_state_dict(saved)
    return correct / len(X_test)


# %%
# Test batches of 2 to 1,000 images, and one batch per digit, for the
# networks of the three seeds. Batches of 1,000 are not resolved from the
# running averages; batches of 2 lose more than 20 points, and one batch
# per digit falls below 50 %.
sizes = (2, 8, 64, 1000, "digit")
acc = {"running": [evaluate(m, [(X_test, y_test)])[1] for m in models]}
acc |= {bs: [with_batch_statistics(m, bs) for m in models] for bs in sizes}
for k, v in acc.items():
    print(f"statistics of {k!s:>7}:", ", ".join(f"{a:.2%}" for a in v))
claim = "batches of 1000 against running averages: below what 3 seeds resolve"
check_unresolved(claim, acc[1000], acc["running"], paired=True, full_only=True)
claim = "test batches of 2 fall below the running averages"
check_order(claim, acc["running"], acc[2], paired=True)
lost = min(r - a for r, a in zip(acc["running"], acc[2], strict=True))
claim = "test batches of 2 lose more than 20 points in every seed"
check(claim, lost > 0.2, measured=f"smallest loss {lost:.2%}")
worst_digit = max(acc["digit"])
claim = "one batch per digit falls below 50 % in every seed"
check(claim, worst_digit < 0.5, measured=f"highest {worst_digit:.2%}")

# %%
# Test data unlike the training data: AdaBN
# -----------------------------------------
# We change the contrast and brightness of the test images (pixel
# :math:`p \mapsto c\,p + b` on the [0, 1] scale), a stand-in for another
# camera. The running averages learnt on the training set no longer centre
# the hidden units. AdaBN keeps every weight and re-estimates the running
# statistics on the new, unlabelled data:
show_source(adapt_batchnorm)

# %%
# Which change is the worst for the BN network? We choose it on the
# validation split (the last 10,000 training images), then read the test
# set once: there, the BN network alone collapses, and AdaBN brings it
# back.


def shift(X, c, b, mean=0.1307, std=0.3081):  # load_tensors' normalisation
    """Images ``X`` with contrast ``c`` and brightness ``b`` on [0, 1]."""
    return (c * (X * std + mean) + b - mean) / std


def accuracies(X, y, c, b):
    """Per seed: BN alone and AdaBN on the images ``X`` under ``(c, b)``."""
    X_new = shift(X, c, b)
    adapted = [adapt_batchnorm(copy.deepcopy(m), X_new) for m in models]
    return [
        [evaluate(m, [(X_new, y)])[1] for m in ms] for ms in (models, adapted)
    ]


shifts = [(1.0, 0.0), (0.5, 0.3), (1.5, -0.2), (0.3, 0.5)]
val_bn = {  # BN alone under each change, on the validation split
    s: statistics.mean(
        evaluate(m, [(shift(X_val, *s), y_val)])[1] for m in models
    )
    for s in shifts
}
worst = min(shifts, key=val_bn.get)
res = {s: accuracies(X_test, y_test, *s) for s in shifts}
for (c, b), r in res.items():
    text = ", ".join(
        f"{k} {statistics.mean(v):.2%}"
        for k, v in zip(("BN", "AdaBN"), r, strict=True)
    )
    print(f"c={c}, b={b:+}: {text} (test, mean of 3 seeds)")
r1, r2 = res[worst]
print(f"worst change on validation: c, b = {worst}")
clean = res[(1.0, 0.0)][0]  # BN alone on the unchanged test images
kept = max(a / c for a, c in zip(r1, clean, strict=True))
claim = "under it, BN alone loses over half its accuracy in every seed"
check(claim, kept < 0.5, measured=f"keeps at most {kept:.0%}", full_only=True)
check_order("under it, AdaBN is above BN alone", r2, r1, paired=True)
gain = min(a - b for a, b in zip(r2, r1, strict=True))
claim = "AdaBN gains more than 30 points there in every seed"
check(claim, gain > 0.3, measured=f"smallest gain {gain:.2%}")

# %%
# One test digit under the four changes, on one grey scale:
fig = plots.show_images(
    torch.stack([shift(X_test[0], c, b) for c, b in shifts]),
    [f"c={c}, b={b:+}" for c, b in shifts],
    ncols=4,
    suptitle="One test digit under the four changes",
)
plt.show()

# %%
# AdaBN gives the same accuracy for every change, and this is no accident:
# :math:`x \mapsto c\,x + b` changes each output of the first linear
# layer by an affine map :math:`z \mapsto c\,z + \text{const}`, which the
# first batch norm undoes once its statistics are measured on the new data.
# A network without batch norm has no such handle (``tests/`` checks the
# identity).
per_seed = zip(*(r[1] for r in res.values()), strict=True)  # AdaBN's
spread = max(max(a) - min(a) for a in per_seed)
print(f"AdaBN: largest spread over the changes, in one seed: {spread:.2%}")

# %%
# What to remember
# ----------------
# * Batch norm suffers with small batches: with two examples it passes on
#   little more than a sign per unit.
# * At test time it uses running averages from training; the batch's own
#   statistics make a prediction depend on the rest of the batch.
# * When the test distribution moves, AdaBN re-estimates the statistics
#   on the new data, without labels. Layer and group normalisation
#   :cite:p:`ba2016layer,wu2018group` avoid batch statistics altogether.
#
# Further reading
# ---------------
# AdaBN :cite:p:`li2018adaptive`, the linear scaling rule
# :cite:p:`goyal2017accurate`, and :cite:p:`ba2016layer,wu2018group`.
#
# Exercises
# ---------
#
# **Exercise 1.** AdaBN above measures the statistics on all the shifted
# test images. Predict first: how many unlabelled images does it need to
# recover most of its accuracy on the worst change, 20, 200 or 2,000? Then
# call ``adapt_batchnorm`` on the first ``n`` shifted images only.
X_new = shift(X_test, *worst)

# %% [solution]
# **Solution.** A mean and a variance per unit are 200 numbers per layer,
# and a few images estimate them well enough: with 20 the accuracy is
# mostly back, with 200 it is close to that of the whole test set.
few = {}
for n in pick(full=(20, 200, 2000), quick_value=(20, 200)):
    adapted = [adapt_batchnorm(copy.deepcopy(m), X_new[:n]) for m in models]
    few[n] = [evaluate(m, [(X_new, y_test)])[1] for m in adapted]
    print(f"AdaBN on {n:>4} images:", ", ".join(f"{a:.2%}" for a in few[n]))
gap = max(a - b for a, b in zip(r2, few[200], strict=True))
claim = "200 images bring AdaBN within 2 points of all of them"
check(claim, gap < 0.02, measured=f"largest gap {gap:.2%}")
gain = min(a - b for a, b in zip(few[20], r1, strict=True))
claim = "20 images already give back more than 30 points"
check(claim, gain > 0.3, measured=f"smallest gain {gain:.2%}")

# sphinx_gallery_thumbnail_number = 1
