"""
Batch normalisation in training
===============================

*Normaliser les données améliore les performances*: inputs with zero mean and
unit variance train better. Batch normalisation :cite:p:`ioffe2015batch`
applies the same idea to the input of every hidden non-linearity, with the
statistics of the current mini-batch, then lets the network scale and shift
the result back with two learnt parameters :math:`\\gamma, \\beta`.

We read the package's layer, redo the MNIST experiment of Ioffe and Szegedy
(three hidden layers of 100 sigmoid units, mini-batches of 60) for 3,000
steps rather than the paper's 50,000, ask where to put the layer and how the
network can undo it. The next page shows its limits: small batches, test
time, and test data unlike the training data.
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
from mla_course.claims import check
from mla_course.data import iterate_batches, load_tensors
from mla_course.layers import BatchNorm1d, batch_norm
from mla_course.models import MLP
from mla_course.settings import get_device, pick, seed_everything
from mla_course.source import show_source
from mla_course.train import evaluate, train_epoch

plots.use_style()
device = get_device()
show_source(batch_norm)

# %%
# The module :class:`~mla_course.layers.BatchNorm1d` holds
# :math:`\gamma` (``weight``), :math:`\beta` (``bias``) and the running
# statistics, and calls the function with the batch's statistics in
# training, the running ones in evaluation:
show_source(BatchNorm1d.forward)

# %%
# It computes what :class:`torch.nn.BatchNorm1d` computes, in both modes,
# running statistics included (the tests also compare the gradients). The
# runs of :mod:`mla_course.runs` use PyTorch's layer, which is faster.
seed_everything(0)
ours, ref = BatchNorm1d(100), nn.BatchNorm1d(100)
x = torch.randn(60, 100) * 3 + 1  # (batch, units)
gaps = {}
for mode in ("train", "eval"):
    getattr(ours, mode)(), getattr(ref, mode)()
    gaps[mode] = (ours(x) - ref(x)).abs().max().item()
gaps["running"] = (ours.running_var - ref.running_var).abs().max().item()
check(
    "our layer and PyTorch's agree to float precision, in both modes",
    max(gaps.values()) < 1e-5,
    measured=", ".join(f"{k} {v:.1e}" for k, v in gaps.items()),
)

# %%
# Ioffe and Szegedy's MNIST experiment
# ------------------------------------
# The same network, trained with plain SGD (step 0.1, batches of 60), with
# and without batch norm before each sigmoid. Here the loop is the lesson:
# every ``every`` steps we measure the test accuracy and, as in Figure 1 of
# the paper, the 15th, 50th and 85th percentiles of the input of one
# sigmoid of the last hidden layer over the test images.
X, y = load_tensors("mnist", "train", device=device)
X_test, y_test = load_tensors(
    "mnist", "test", device=device, limit=pick(None, 2000)
)
steps = pick(full=3000, quick_value=200)
every = pick(full=150, quick_value=100)


def train_and_watch(batch_norm, seed=0):
    """Train ``steps`` SGD steps; test accuracy and percentiles on the way."""
    gen = seed_everything(seed)
    model = MLP(
        (784, 100, 100, 100, 10),
        "sigmoid",
        batch_norm=batch_norm,
        norm_layer=BatchNorm1d,
    ).to(device)
    sigmoid = [m for m in model.net if isinstance(m, nn.Sigmoid)][-1]
    seen = {}  # the input of unit 0 of the last sigmoid, (test images,)
    sigmoid.register_forward_pre_hook(lambda m, i: seen.update(z=i[0][:, 0]))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    batches = itertools.chain.from_iterable(
        iterate_batches(X, y, 60, generator=gen) for _ in itertools.count()
    )
    acc, pct = [], []
    for _ in range(steps // every):
        train_epoch(model, itertools.islice(batches, every), optimizer)
        acc.append(evaluate(model, [(X_test, y_test)])[1])  # fills seen
        q = torch.tensor([0.15, 0.5, 0.85])
        pct.append(torch.quantile(seen["z"].cpu(), q))
    return torch.tensor(acc), torch.stack(pct), model


# %%
# With and without batch norm, the same initial weights and batches:
runs = {bn: train_and_watch(bn) for bn in (None, "before")}
acc_no, acc_bn = runs[None][0], runs["before"][0]
check(
    f"after {every} steps the BN network is far ahead (> 30 points)",
    acc_bn[0] - acc_no[0] > 0.3,
    measured=f"{acc_bn[0]:.1%} with BN, {acc_no[0]:.1%} without",
)

# %%
# The network with batch norm learns much faster. Without it, the input of
# the sigmoid moves during training (what the paper calls *internal
# covariate shift*); with it, the distribution stays put from the first
# steps: the median moves less, in units of the spread of the inputs.
drift = {}
for bn, (_, pct, _) in runs.items():
    spread = (pct[:, 2] - pct[:, 0]).mean()
    drift[bn] = ((pct[-1, 1] - pct[0, 1]).abs() / spread).item()
check(
    "the median input of the sigmoid drifts less with BN than without",
    drift["before"] < drift[None],
    measured=f"drift / spread {drift['before']:.2f} with BN, "
    f"{drift[None]:.2f} without",
)
t = torch.arange(1, steps // every + 1) * every
fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharex=True)
for bn, (acc, _, _) in runs.items():
    axes[0].plot(t, 100 * acc, label="with BN" if bn else "without BN")
axes[0].set(xlabel="training step", ylabel="test accuracy (%)")
axes[0].set_title("(a) Test accuracy")
axes[0].legend()
for ax, (bn, (_, pct, _)) in zip(axes[1:], runs.items(), strict=True):
    ax.fill_between(t, pct[:, 0], pct[:, 2], alpha=0.25, label="15-85th pct")
    ax.plot(t, pct[:, 1], label="median")
    ax.set(xlabel="training step", ylabel="input of the sigmoid")
    ax.set_title(f"({'c' if bn else 'b'}) {'with' if bn else 'without'} BN")
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
# which of the two wins depends on the network, so we state no order.
runs["after"] = train_and_watch("after")
for bn in ("before", "after"):
    check(
        f"BN {bn} the sigmoid beats no BN after {steps} steps",
        runs[bn][0][-1] > acc_no[-1],
        measured=f"{runs[bn][0][-1]:.1%} vs {acc_no[-1]:.1%}",
    )

# %%
# Est-ce toujours une bonne idée ?
# --------------------------------
# Normalising could remove what the next layer needs (a ReLU might want
# most of its inputs negative). Hence :math:`\gamma, \beta`: *si il le
# souhaite, le réseau peut apprendre à « dénormaliser »*. Comment ? With
# :math:`\gamma = \sqrt{\sigma^2 + \epsilon}` and :math:`\beta = \mu` the
# layer gives back its input, as we check on running statistics:
bn = BatchNorm1d(100).eval()
bn.running_mean.normal_(2.0, 1.0), bn.running_var.uniform_(0.5, 4.0)
with torch.no_grad():
    bn.weight.copy_(torch.sqrt(bn.running_var + bn.eps))
    bn.bias.copy_(bn.running_mean)
gap = (bn(x) - x).abs().max().item()
check(
    "with gamma = sigma and beta = mu the layer is the identity",
    gap < 1e-5,
    measured=f"max |BN(x) - x| = {gap:.1e}",
)

# %%
# The trained network does use this freedom: its :math:`\gamma`, all
# initialised to 1, have moved, some units scaled up, others down.
model = runs["before"][2]
gammas = [
    m.weight.detach().cpu()
    for m in model.modules()
    if isinstance(m, BatchNorm1d)
]
moved = torch.cat(gammas).sub(1).abs().mean().item()
check(
    "the learnt gammas moved away from 1 (mean |gamma - 1| > 0.05)",
    moved > 0.05,
    measured=f"mean |gamma - 1| = {moved:.3f}",
    full_only=True,
)
fig, ax = plt.subplots(figsize=(6, 3.5))
for i, gamma in enumerate(gammas):
    ax.hist(
        gamma,
        bins=20,
        histtype="stepfilled",
        alpha=0.5,
        label=f"hidden layer {i + 1}",
    )
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
#   activation.
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
expected = torch.tensor([-(1.5**0.5), 0.0, 1.5**0.5])[:, None]
check(
    "a batch a, a + 1, a + 2 becomes -sqrt(3/2), 0, sqrt(3/2) for any a",
    (out3 - expected).abs().max() < 1e-4,
    measured=f"max gap {(out3 - expected).abs().max():.1e}",
)

# sphinx_gallery_thumbnail_number = 1
