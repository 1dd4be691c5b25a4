"""
Batch normalisation in training
===============================

*Normaliser les données améliore les performances*: inputs with zero mean and
unit variance train better. Batch normalisation :cite:p:`ioffe2015batch`
applies the same idea to the input of every hidden non-linearity, with the
statistics of the current mini-batch, then lets the network scale and shift
the result back with two learnt parameters :math:`\\gamma, \\beta`.

We read the package's layer, redo the MNIST experiment of Ioffe and Szegedy
(three hidden layers of 100 sigmoid units, mini-batches of 60) for 1,000
steps rather than the paper's 50,000, ask where to put the layer and how the
network can undo it. Each network gets its own step, chosen on a validation
split. The next page shows its limits: small batches, test time, and test
data unlike the training data.
"""

# %%
# The layer, from scratch
# -----------------------
# For each unit :math:`k`, over a mini-batch of :math:`m` examples:
# :math:`\hat x_i = (x_i - \mu_B) / \sqrt{\sigma_B^2 + \epsilon}` with the
# batch mean and (biased) variance, then :math:`y_i = \gamma \hat x_i +
# \beta`. In training the same function also moves the running averages
# of :math:`\mu_B` and :math:`\sigma_B^2` kept for test time (the
# ``with torch.no_grad()`` block). Here it is, as the package runs it:
import itertools

import matplotlib.pyplot as plt
import torch
from torch import nn

from mla_course import plots
from mla_course.claims import check, check_order, check_unresolved
from mla_course.data import iterate_batches, load_tensors
from mla_course.layers import BatchNorm1d, batch_norm
from mla_course.models import MLP
from mla_course.settings import get_device, pick, seed_everything
from mla_course.source import show_source
from mla_course.train import TrainingDiverged, evaluate, train_epoch

plots.use_style()
device = get_device()
show_source(batch_norm)

# %%
# The module :class:`~mla_course.layers.BatchNorm1d` holds
# :math:`\gamma` (``weight``), :math:`\beta` (``bias``) and the running
# statistics, and calls the function with the batch's statistics in
# training, the running ones in evaluation. It computes what
# :class:`torch.nn.BatchNorm1d` computes, in both modes, running statistics
# and gradients included (``tests/`` compares them). The networks of
# :class:`~mla_course.models.MLP`, so every run of this book, use it:
show_source(BatchNorm1d.forward)

# %%
# Ioffe and Szegedy's MNIST experiment
# ------------------------------------
# The same network, trained with plain SGD on batches of 60, with and
# without batch norm before each sigmoid. Here the loop is the lesson:
# every ``every`` steps we measure the accuracy on a validation split (the
# last 10,000 training images, never trained on) and, as in Figure 1 of the
# paper, the 15th, 50th and 85th percentiles of the input of one sigmoid of
# the last hidden layer over those images.
X, y = load_tensors("mnist", "train", device=device)
X, y, X_val, y_val = X[:-10_000], y[:-10_000], X[-10_000:], y[-10_000:]
X_test, y_test = load_tensors(
    "mnist", "test", device=device, limit=pick(None, 2000)
)
steps = pick(full=1000, quick_value=200)
every = 100


def train_and_watch(batch_norm, lr, seed=0):
    """Train ``steps`` SGD steps; validation accuracy and percentiles."""
    gen = seed_everything(seed)
    model = MLP((784, 100, 100, 100, 10), "sigmoid", batch_norm=batch_norm)
    model.to(device)
    sigmoid = [m for m in model.net if isinstance(m, nn.Sigmoid)][-1]
    seen = {}  # the input of unit 0 of the last sigmoid, (images,)
    sigmoid.register_forward_pre_hook(lambda m, i: seen.update(z=i[0][:, 0]))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    batches = itertools.chain.from_iterable(
        iterate_batches(X, y, 60, generator=gen) for _ in itertools.count()
    )
    acc, pct = [], []
    for _ in range(steps // every):
        try:
            train_epoch(model, itertools.islice(batches, every), optimizer)
        except TrainingDiverged:  # the step is too large: never chosen
            return torch.zeros(steps // every), None, model
        acc.append(evaluate(model, [(X_val, y_val)])[1])  # fills seen
        q = torch.tensor([0.15, 0.5, 0.85])
        pct.append(torch.quantile(seen["z"].cpu(), q))
    return torch.tensor(acc), torch.stack(pct), model


# %%
# A step for each network
# -----------------------
# Batch norm is said to allow larger steps, so one shared step would favour
# one side. Each of the three networks of this page (no BN, BN before and
# BN after the sigmoid) gets the step, from the same grid, with the best
# validation accuracy at the end of the budget (seed 0); a run that diverges
# is never chosen. Two more seeds then train at that step.
grid, arms, seeds = (0.3, 1.0, 3.0), (None, "before", "after"), (0, 1, 2)
tuning = {(bn, lr): train_and_watch(bn, lr) for bn in arms for lr in grid}
step = {bn: max(grid, key=lambda lr: tuning[bn, lr][0][-1]) for bn in arms}
runs = {
    bn: [
        tuning[bn, step[bn]],
        *(train_and_watch(bn, step[bn], s) for s in seeds[1:]),
    ]
    for bn in arms
}
print("chosen steps:", {str(bn): lr for bn, lr in step.items()})

# %%
# The network with batch norm learns much faster, even against a network
# without it at its own step. Is it because the input of each
# sigmoid stops moving during training (what the paper calls *internal
# covariate shift*)? We measure how far the median of that input moves
# over training, in units of its spread: the difference between the two
# networks is below what 3 seeds resolve. We find no steadier input with
# batch norm here, as :cite:t:`santurkar2018how` found on other networks.
early = {bn: [r[0][0].item() for r in runs[bn]] for bn in arms}
claim = f"after {every} steps, BN before the sigmoid is ahead of no BN"
check_order(claim, early["before"], early[None], paired=True)
drift = {}
for bn in (None, "before"):
    pct = [r[1] for r in runs[bn]]  # one (checkpoints, 3) per seed
    drift[bn] = [
        (p[-1, 1] - p[0, 1]).abs().item() / (p[:, 2] - p[:, 0]).mean().item()
        for p in pct
    ]
claim = "the median's drift with and without BN: below what 3 seeds resolve"
check_unresolved(
    claim, drift[None], drift["before"], metric="drift", paired=True
)
t = torch.arange(1, steps // every + 1) * every
fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharex=True)
for bn in (None, "before"):
    acc = torch.stack([r[0] for r in runs[bn]]).mean(0)
    label = f"{'with' if bn else 'without'} BN, step {step[bn]:g}"
    axes[0].plot(t, 100 * acc, label=label)
axes[0].set(xlabel="training step", ylabel="validation accuracy (%)")
axes[0].set_title("(a) Accuracy (mean of 3 seeds)")
axes[0].legend()
for ax, bn in zip(axes[1:], (None, "before"), strict=True):
    pct = runs[bn][0][1]  # seed 0
    ax.fill_between(t, pct[:, 0], pct[:, 2], alpha=0.25, label="15-85th pct")
    ax.plot(t, pct[:, 1], label="median")
    ax.set(xlabel="training step", ylabel="input of the sigmoid")
    ax.set_title(
        f"({'c' if bn else 'b'}) {'with' if bn else 'without'} BN, seed 0"
    )
axes[1].sharey(axes[2])
axes[1].legend(loc="upper left")
plt.show()

# %%
# Before or after the non-linearity?
# ----------------------------------
# *La BN peut s'appliquer à la sortie de la fonction d'activation, ou juste
# avant (c'est souvent le cas).* Before the sigmoid, its input is centred
# where the sigmoid is steepest; after it, the input of the next linear
# layer is normalised instead. Both train faster than no normalisation;
# which of the two wins depends on the network, so we state no order. The
# test set is read once, at the end, by the networks trained at the chosen
# steps: BN after the sigmoid still ends ahead of no BN.
claim = f"after {every} steps, BN after the sigmoid is ahead of no BN"
check_order(claim, early["after"], early[None], paired=True)
test = {
    bn: [evaluate(r[2], [(X_test, y_test)])[1] for r in runs[bn]]
    for bn in arms
}
for bn, v in test.items():
    name = f"BN {bn}" if bn else "no BN"
    print(f"{name}:", ", ".join(f"{a:.2%}" for a in v), "on the test set")
claim = f"after {steps} steps, BN after the sigmoid is ahead on the test set"
check_order(claim, test["after"], test[None], paired=True)

# %%
# Est-ce toujours une bonne idée ?
# --------------------------------
# Normalising could remove what the next layer needs (a ReLU might want
# most of its inputs negative). Hence :math:`\gamma, \beta`: *si il le
# souhaite, le réseau peut apprendre à « dénormaliser »*. Comment ? With
# :math:`\gamma = \sqrt{\sigma^2 + \epsilon}` and :math:`\beta = \mu` the
# layer gives back its input (``tests/`` checks it):
bn = BatchNorm1d(100).eval()
bn.running_mean.normal_(2.0, 1.0), bn.running_var.uniform_(0.5, 4.0)
with torch.no_grad():
    bn.weight.copy_(torch.sqrt(bn.running_var + bn.eps))
    bn.bias.copy_(bn.running_mean)
x = torch.randn(60, 100) * 3 + 1  # (batch, units)
print(f"max |BN(x) - x| = {(bn(x) - x).abs().max().item():.1e}")

# %%
# The trained networks do use this freedom: their :math:`\gamma`, all
# initialised to 1, have moved (the figure: seed 0).

norms = [
    [m.weight.detach().cpu() for m in r[2].net if isinstance(m, BatchNorm1d)]
    for r in runs["before"]
]  # the gammas of each layer, per seed
moved = [torch.cat(g).sub(1).abs().mean().item() for g in norms]
check(
    "in every seed the gammas moved away from 1 (mean |gamma - 1| > 0.05)",
    min(moved) > 0.05,
    measured="mean |gamma - 1| " + ", ".join(f"{m:.3f}" for m in moved),
)
fig, ax = plt.subplots(figsize=(6, 3.5))
layers = [f"hidden layer {i + 1}" for i in range(len(norms[0]))]
ax.hist(norms[0], bins=20, histtype="stepfilled", alpha=0.5, label=layers)
ax.axvline(1.0, color="gray", ls="--", lw=1)
ax.set(xlabel=r"learnt $\gamma$ (initialised to 1)", ylabel="units")
ax.set_title(f"Scales learnt by the BN network after {steps} steps")
ax.legend()
plt.show()

# %%
# What to remember
# ----------------
# * Batch norm normalises each unit with the mini-batch's mean and
#   variance, then rescales with learnt :math:`\gamma, \beta`; in training
#   it also keeps running averages of the statistics for test time.
# * Training is much faster, whether the layer is before or after the
#   activation, each network at its own best step.
# * With :math:`\gamma, \beta` the network can undo the normalisation
#   where it needs to.
#
# Further reading
# ---------------
# :cite:p:`ioffe2015batch`, the backward pass explained by
# :cite:t:`kratzert2016batchnorm`; why it helps is still discussed:
# a smoother loss rather than less covariate shift, according to
# :cite:t:`santurkar2018how`.
#
# Exercises
# ---------
#
# **Exercise 1.** Predict first: in training mode, what does a batch norm
# without :math:`\gamma, \beta` output for a batch of three values
# :math:`a, a + 1, a + 2`? Does it depend on :math:`a`? Then run the layer
# on ``a`` = -5, 0 and 100.
threes = torch.tensor([[-5.0, 0.0, 100.0]]) + torch.arange(3.0)[:, None]

# %% [solution]
# **Solution.** The mean is :math:`a + 1` and the (biased) variance 2/3,
# so the output is :math:`-\sqrt{3/2}, 0, \sqrt{3/2}` for every
# :math:`a`: the layer keeps only the order and the relative gaps inside
# the batch. Small batches leave it little else to pass on.
out3 = BatchNorm1d(3, affine=False)(threes)  # one column per value of a
print(out3)

# sphinx_gallery_thumbnail_number = 1
