"""
Batch normalisation
===================

*Normaliser les données améliore les performances*: inputs with zero mean and
unit variance train better. Batch normalisation :cite:p:`ioffe2015batch`
applies the same idea to the input of every hidden non-linearity, with the
statistics of the current mini-batch, then lets the network scale and shift
the result back with two learnt parameters :math:`\\gamma, \\beta`.

We redo the MNIST experiment of Ioffe and Szegedy (three hidden layers of 100
sigmoid units, mini-batches of 60) with the from-scratch
:class:`~mla_course.layers.BatchNorm1d`, then answer the lecture's questions:
where to put the layer, which statistics to use at test time, what happens
when the test data are distributed differently (AdaBN
:cite:p:`li2018adaptive`), and whether it is always a good idea. To keep the
page short we train for a few thousand steps, not the paper's 50,000.
"""

# %%
# The layer, from scratch
# -----------------------
# For each unit :math:`k`, over a mini-batch of :math:`m` examples:
# :math:`\hat x_i = (x_i - \mu_B) / \sqrt{\sigma_B^2 + \epsilon}` with the batch
# mean and (biased) variance, then :math:`y_i = \gamma \hat x_i + \beta`.
# During training the layer also keeps running averages of :math:`\mu_B` and
# :math:`\sigma_B^2` for test time. Our layer agrees with PyTorch's in both
# modes (the tests also compare gradients and running statistics).
import itertools

import matplotlib.pyplot as plt
import torch
from torch import nn

from mla_course import plots
from mla_course.data import iterate_batches, load_tensors
from mla_course.layers import BatchNorm1d
from mla_course.models import MLP, make_activation
from mla_course.train import evaluate, train_epoch
from mla_course.utils import get_device, pick

plots.use_style()
device = get_device()
torch.manual_seed(0)
ours, ref = BatchNorm1d(100), nn.BatchNorm1d(100)
x = torch.randn(60, 100) * 3 + 1  # (batch, units)
for mode in ("train", "eval"):
    getattr(ours, mode)(), getattr(ref, mode)()
    print(f"{mode}: max |ours - torch| = {(ours(x) - ref(x)).abs().max().item():.1e}")

# %%
# Ioffe and Szegedy's MNIST experiment
# ------------------------------------
# The same network, trained with plain SGD (learning rate 0.1, batches of 60),
# with and without batch norm before each sigmoid. Every few steps we measure
# the test accuracy and the distribution of the input of one sigmoid of the
# last hidden layer over test images (its 15th, 50th and 85th percentiles), as
# in Figure 1 of the paper.
X, y = load_tensors("mnist", "train", device=device)
X_test, y_test = load_tensors("mnist", "test", device=device, limit=pick(None, 2000))
steps, every = pick(full=3000, quick_value=200), pick(full=150, quick_value=100)


def train_and_watch(batch_norm, activation="sigmoid", lr=0.1):
    """Train for ``steps`` SGD steps; every ``every`` steps, test accuracy and percentiles."""
    torch.manual_seed(0)
    model = MLP(
        (784, 100, 100, 100, 10), activation, batch_norm=batch_norm, norm_layer=BatchNorm1d
    ).to(device)
    act = [m for m in model.net if isinstance(m, type(make_activation(activation)))][-1]
    seen = {}
    act.register_forward_pre_hook(lambda m, inp: seen.update(z=inp[0][:, 0]))  # unit 0's input
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(0)
    batches = itertools.chain.from_iterable(
        iterate_batches(X, y, 60, generator=gen) for _ in itertools.count()
    )
    acc, pct = [], []
    for _ in range(steps // every):
        train_epoch(model, itertools.islice(batches, every), optimizer)
        acc.append(evaluate(model, [(X_test, y_test)])[1])  # its forward pass fills seen["z"]
        pct.append(torch.quantile(seen["z"].cpu(), torch.tensor([0.15, 0.5, 0.85])))
    return model, torch.tensor(acc), torch.stack(pct)


runs = {bn: train_and_watch(bn) for bn in (None, "before")}
for bn, (_, acc, _) in runs.items():
    print(
        f"{'with' if bn else 'without'} batch norm: test accuracy {100 * acc[-1]:.2f}% "
        f"after {steps} steps (after {every} steps: {100 * acc[0]:.2f}%)"
    )

# %%
# The network with batch norm learns much faster. Without it, the input of the
# sigmoid starts in a narrow band and its distribution keeps moving during
# training (what the paper calls *internal covariate shift*); with it, the
# distribution is centred and stable from the first steps.
t = torch.arange(1, steps // every + 1) * every
fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharex=True)
for bn, (_, acc, _) in runs.items():
    axes[0].plot(t, 100 * acc, label="with BN" if bn else "without BN")
axes[0].set(xlabel="training step", ylabel="test accuracy (%)", title="(a) Test accuracy")
axes[0].legend()
for ax, bn in zip(axes[1:], runs, strict=True):
    pct = runs[bn][2]
    ax.fill_between(t, pct[:, 0], pct[:, 2], alpha=0.25, label="15th to 85th percentile")
    ax.plot(t, pct[:, 1], label="median")
    ax.set(
        xlabel="training step",
        ylabel="input of the sigmoid",
        title=f"({'c' if bn else 'b'}) One unit, {'with' if bn else 'without'} BN",
    )
axes[1].sharey(axes[2])
axes[1].legend(loc="upper left")
plt.show()

# %%
# Before or after the non-linearity?
# ----------------------------------
# *La BN peut s'appliquer à la sortie de la fonction d'activation, ou juste
# avant (c'est souvent le cas).* Ioffe and Szegedy put it before: the input of
# the sigmoid is then centred where the sigmoid is steepest. After the sigmoid,
# the input of the next linear layer is normalised instead. Both placements
# train much faster than no normalisation; which one wins depends on the
# network and its activation, and the numbers below are for this one.
runs["after"] = train_and_watch("after")
for bn, label in ((None, "no BN"), ("before", "BN before"), ("after", "BN after")):
    print(f"{label:>10}: test accuracy {100 * runs[bn][1][-1]:.2f}%")

# %%
# Sensitivity to the batch size
# -----------------------------
# The lecture warns that batch norm is *très sensible à la taille des batches*:
# the statistics of a small batch are noisy estimates of the population's. We
# train for one epoch over the same examples with batches of 2 to 128 (the
# learning rate proportional to the batch size), with and without BN. We use
# ReLU units here, because without BN a sigmoid network barely moves in one
# epoch and the comparison would say nothing about BN.
from mla_course.experiments import Config, sweep

base = Config(
    hidden=(100, 100, 100),
    activation="relu",
    epochs=1,
    n_train=pick(full=5000, quick_value=500),
    n_test=pick(full=None, quick_value=2000),
)
batch_sizes = pick(full=[2, 8, 32, 128], quick_value=[8, 32])
configs = {
    (bn, bs): base.replace(batch_norm=bn, batch_size=bs, lr=0.2 * bs / 32)
    for bn in (None, "before")
    for bs in batch_sizes
}
table = sweep(
    {f"{'BN' if bn else 'no BN'}, batch {bs}": c for (bn, bs), c in configs.items()},
    seeds=range(pick(full=2, quick_value=1)),
    device=device,
)
by_size = dict(zip(configs, table.values(), strict=True))  # (bn, batch size) -> Result
table

# %%
# Without batch norm, small batches are fine (more, noisier steps); with it,
# the smallest batches fall far behind. (The largest batches make too few
# steps in one epoch to learn much, with or without BN.)
fig, ax = plt.subplots(figsize=(5.5, 3.5))
for bn in (None, "before"):
    ax.errorbar(
        batch_sizes,
        [100 * by_size[bn, bs].mean() for bs in batch_sizes],
        yerr=[100 * by_size[bn, bs].std() for bs in batch_sizes],
        marker="o",
        capsize=3,
        label="with BN" if bn else "without BN",
    )
ax.set(
    xscale="log",
    xlabel="batch size",
    ylabel="test accuracy (%)",
    title=f"ReLU MLP, one epoch of {base.n_train} examples",
)
ax.set_xticks(batch_sizes, [str(b) for b in batch_sizes])
ax.legend()
plt.show()

# %%
# With a batch of 2 the layer has almost nothing left to pass on: two values
# normalised by their own mean and variance always become :math:`-1` and
# :math:`+1` (up to :math:`\epsilon`), whatever they were.
pair = BatchNorm1d(3, affine=False)(torch.tensor([[0.1, 5.0, -2.0], [0.2, 90.0, 7.0]]))
print(pair)

# %%
# Quels paramètres utiliser en test ?
# -----------------------------------
# *Ceux estimés sur la base d'apprentissage (avec une moyenne glissante par
# exemple)*: the running averages. With the statistics of the test batch
# instead, the prediction for one image depends on the other images of its
# batch: fine for large shuffled batches, poor for small ones, and very wrong
# for a batch holding a single class, whose mean is not the population's.
model = runs["before"][0]


@torch.no_grad()
def accuracy_with_batch_stats(batches):
    model.train()  # batch statistics (this also moves the running averages: we restore them)
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    correct = sum((model(xb).argmax(1) == yb).sum().item() for xb, yb in batches)
    model.load_state_dict(saved)
    return correct / len(X_test)


print(f"running averages (model.eval()):   {100 * evaluate(model, [(X_test, y_test)])[1]:.2f}%")
for bs in (2, 8, 64, 1000):
    acc = accuracy_with_batch_stats(iterate_batches(X_test, y_test, bs, shuffle=False))
    print(f"statistics of test batches of {bs:>4}: {100 * acc:.2f}%")
one_class = [(X_test[y_test == c], y_test[y_test == c]) for c in range(10)]
print(f"one batch per digit:               {100 * accuracy_with_batch_stats(one_class):.2f}%")

# %%
# Que se passe-t-il si la distribution des données en test est très différente ?
# ------------------------------------------------------------------------------
# We change the contrast and brightness of the test images (pixel
# :math:`p \mapsto c\,p + b`, on the [0, 1] scale), a simple stand-in for
# another camera. The running averages learnt on the training set no longer
# centre the hidden units, and the BN network may then do even worse than the
# one without. AdaBN :cite:p:`li2018adaptive` keeps every weight
# and re-estimates the running statistics on the new, unlabelled data
# (:func:`~mla_course.layers.adapt_batchnorm`).
import copy

from mla_course.layers import adapt_batchnorm

mean, std = 0.1307, 0.3081  # the normalisation of load_tensors
shifts = [(1.0, 0.0), (0.5, 0.3), (1.5, -0.2), (0.3, 0.5)]
no_bn = runs[None][0]
results = {}
for c, b in shifts:
    X_shift = ((c * (X_test * std + mean) + b) - mean) / std
    adapted = adapt_batchnorm(copy.deepcopy(model), X_shift)
    results[c, b] = [evaluate(m, [(X_shift, y_test)])[1] for m in (no_bn, model, adapted)]
    print(
        f"contrast {c}, brightness {b:+}: "
        + ", ".join(
            f"{name} {100 * a:.2f}%"
            for name, a in zip(("no BN", "BN", "AdaBN"), results[c, b], strict=True)
        )
    )
fig = plots.show_images(
    torch.stack([((c * (X_test[0] * std + mean) + b) - mean) / std for c, b in shifts]),
    [f"c={c}, b={b:+}" for c, b in shifts],
    ncols=4,
    suptitle="One test digit under the four changes (shared grey scale)",
)
plt.show()

# %%
# AdaBN recovers the accuracy on the original images exactly, and this is no
# accident: a change :math:`x \mapsto c\,x + b` of the pixels changes the
# output :math:`z = Wx` of the first linear layer, unit by unit, by the affine
# map :math:`z \mapsto c\,z + b\,W\mathbf{1}`, which the first batch norm
# undoes once its statistics are measured on the new data. A network without
# batch norm has no such handle.
assert all(abs(r[2] - results[shifts[0]][2]) < 0.005 for r in results.values())

# %%
# Est-ce toujours une bonne idée ?
# --------------------------------
# Normalising could remove information the next layer needs (a ReLU might want
# most inputs negative). Hence :math:`\gamma, \beta`: *si il le souhaite, le
# réseau peut apprendre à « dénormaliser »*. Comment ? With
# :math:`\gamma = \sqrt{\sigma^2 + \epsilon}` and :math:`\beta = \mu` the
# layer gives back its input, as we check on the running statistics below.
# The learnt :math:`\gamma` of the trained network show it uses this freedom.
bn = BatchNorm1d(100).eval()
bn.running_mean.normal_(2.0, 1.0), bn.running_var.uniform_(0.5, 4.0)
with torch.no_grad():
    bn.weight.copy_(torch.sqrt(bn.running_var + bn.eps)), bn.bias.copy_(bn.running_mean)
print(f"max |BN(x) - x| with gamma = sigma, beta = mu: {(bn(x) - x).abs().max().item():.1e}")

gammas = [m.weight.detach().cpu() for m in model.modules() if isinstance(m, BatchNorm1d)]
fig, ax = plt.subplots(figsize=(6, 3.5))
for i, gamma in enumerate(gammas):
    ax.hist(gamma, bins=20, histtype="stepfilled", alpha=0.5, label=f"hidden layer {i + 1}")
ax.axvline(1.0, color="gray", ls="--", lw=1)
ax.set(
    xlabel=r"learnt $\gamma$ (initialised to 1)",
    ylabel="units",
    title=f"Scales learnt by the BN network after {steps} steps",
)
ax.legend()
plt.show()

# %%
# It is not always a good idea: predictions in training depend on the other
# examples of the batch, small batches give noisy statistics (above), and the
# test data must resemble the training data or be adapted. Layer and group
# normalisation :cite:p:`ba2016layer,wu2018group` normalise each example on its
# own instead. Why batch norm helps is still discussed: smoother loss rather
# than less covariate shift, according to :cite:t:`santurkar2018how`.
#
# What to remember
# ----------------
# * Batch norm normalises each unit with the mini-batch's mean and variance,
#   then rescales with learnt :math:`\gamma, \beta`: training is much faster.
# * At test time it uses running averages from training; the batch's own
#   statistics make predictions depend on the batch.
# * It suffers with small batches, and AdaBN re-estimates the statistics when
#   the test distribution moves.
#
# Further reading
# ---------------
# :cite:p:`ioffe2015batch`, AdaBN :cite:p:`li2018adaptive`, the backward pass
# explained by :cite:t:`kratzert2016batchnorm`, and
# :cite:p:`santurkar2018how,ba2016layer,wu2018group`.

# sphinx_gallery_thumbnail_number = 1
