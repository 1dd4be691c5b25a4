r"""
Gradient dispersion: why the first layers learn slowly
======================================================

*Les dernières couches apprennent bien plus vite que les premières. Pourquoi ?*
The lecture takes this observation from chapter 5 of Nielsen's book: in a deep
sigmoid network, the gradient with respect to the weights and biases of the
first layers is much smaller than for the last ones, so the first layers barely
move. This page measures it on MNIST with Nielsen's networks (2, 3 and 4 hidden
layers of 30 sigmoid units), at initialisation and during training, explains it
with the chain rule, tries the lecture's suggestion of larger weights, and
makes the same measurements with ReLU units.

Following Nielsen, the *speed of learning* of layer :math:`l` is the norm of
the gradient of the loss with respect to its biases,
:math:`\|\partial C / \partial b^l\|`, here averaged over a batch of 1,000
training images (:func:`mla_course.diagnostics.learning_speed`).
"""

# %%
# Learning speed of each layer at initialisation
# ----------------------------------------------
# PyTorch's default initialisation, which is the lecture's
# :math:`U(-1/\sqrt{n}, 1/\sqrt{n})`, mean over 5 random initialisations (2 in
# quick mode).
import numpy as np
import torch

from mla_course import diagnostics, plots
from mla_course.data import load_tensors
from mla_course.init import init_
from mla_course.models import MLP
from mla_course.utils import get_device, pick

plots.use_style()
device = get_device()
X, y = load_tensors("mnist", "train", device=device, limit=1000)
sizes = {depth: [784, *[30] * depth, 10] for depth in (2, 3, 4)}


def make(sizes, activation="sigmoid", init="default", scale=1.0, seed=0):
    """An MLP initialised by ``init``, then every weight multiplied by ``scale``."""
    torch.manual_seed(seed)
    model = init_(MLP(sizes, activation), init).to(device)
    with torch.no_grad():
        for layer in model.linears:
            layer.weight *= scale
    return model


def at_init(sizes, activation="sigmoid", init="default", scale=1.0, seeds=None):
    """Mean over seeds of the per-layer statistics on the batch (X, y)."""
    seeds = range(pick(full=5, quick_value=2)) if seeds is None else seeds
    stats = [diagnostics.layer_stats(make(sizes, activation, init, scale, s), X, y) for s in seeds]
    return {k: np.mean([s[k] for s in stats], axis=0) for k in diagnostics.STATS}


init_stats = {depth: at_init(s) for depth, s in sizes.items()}
for depth, st in init_stats.items():
    speeds = "  ".join(f"{v:.2e}" for v in st["bias_grad_norm"][:-1])
    weights = "  ".join(f"{v:.2e}" for v in st["weight_grad_norm"][:-1])
    print(f"{depth} hidden layers: ||dC/db|| = {speeds}\n{'':17}||dC/dW|| = {weights}")

# %%
# Each curve is one network; each point is a hidden layer, from the input
# (layer 1) to the last hidden layer. The gradients shrink towards the input,
# by a roughly constant factor per layer: the first layer of the deepest
# network learns the slowest.
import matplotlib.pyplot as plt

fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
for ax, key, label in zip(axes, ("bias_grad_norm", "weight_grad_norm"), ("b", "W"), strict=True):
    for depth, st in init_stats.items():
        ax.plot(range(1, depth + 1), st[key][:-1], marker="o", label=f"{depth} hidden layers")
    ax.set(
        xlabel="hidden layer",
        ylabel=rf"$\|\partial C / \partial {label}^l\|$",
        yscale="log",
        xticks=[1, 2, 3, 4],
        title=f"Gradient w.r.t. the {'biases' if label == 'b' else 'weights'}",
    )
    ax.legend()
plt.show()
ratio = init_stats[4]["bias_grad_norm"][3] / init_stats[4]["bias_grad_norm"][0]
print(f"4 hidden layers: the last hidden layer learns {ratio:.0f} times faster than the first")

# %%
# And during training?
# --------------------
# We train each network with plain SGD (learning rate 0.5, mini-batches of 64)
# and record the learning speed of every layer at every step with a
# :class:`~mla_course.diagnostics.Recorder`. The curves are moving averages.
# The titles give the test accuracy at the end, and the printed ratios compare
# the first and last hidden layers over the last fifth of training: a network
# whose first layers catch up leaves its initial plateau, one whose first
# layers stay orders of magnitude slower stays near chance level.
from mla_course.train import fit

n_train, epochs = pick(full=10_000, quick_value=2000), pick(full=5, quick_value=1)
train = load_tensors("mnist", "train", device=device, limit=n_train)
test = load_tensors("mnist", "test", device=device, limit=2000)


def train_and_record(sizes, activation="sigmoid", init="default", lr=0.5, scale=1.0):
    model = make(sizes, activation, init, scale)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    with diagnostics.Recorder(model) as rec:
        history = fit(model, optimizer, train, test, epochs=epochs, seed=0, on_divergence="stop")
    return rec.series("bias_grad_norm")[:, :-1], history  # (steps, hidden layers)


def smooth(v, window=20):
    kernel = np.ones(window) / window
    return np.stack([np.convolve(col, kernel, mode="valid") for col in v.T], axis=1)


fig, axes = plt.subplots(1, 3, figsize=(12, 3.6), sharey=True)
for ax, (depth, s) in zip(axes, sizes.items(), strict=True):
    speed, history = train_and_record(s)
    ax.plot(smooth(speed), label=[f"hidden layer {i + 1}" for i in range(depth)])
    ax.set(
        xlabel="step",
        yscale="log",
        title=f"{depth} hidden layers: test acc. {100 * history.test_acc[-1]:.1f}%",
    )
    late = speed[-len(speed) // 5 :].mean(0)  # the last fifth of training
    print(
        f"{depth} hidden layers, end of training: speed of layer 1 / last = {late[0] / late[-1]:.3f}"
    )
axes[0].set_ylabel(r"learning speed $\|\partial C / \partial b^l\|$")
axes[0].legend(handles=axes[-1].get_lines(), loc="lower right")
plt.show()

# %%
# Why: a product of small factors
# -------------------------------
# Take a chain of one sigmoid neuron per layer, :math:`a_l = \sigma(z_l)`,
# :math:`z_l = w_l a_{l-1} + b_l`. The chain rule gives the lecture's formula
#
# .. math::
#
#     \frac{\partial C}{\partial b_1} = \sigma'(z_1)\, w_2 \sigma'(z_2)\,
#     w_3 \sigma'(z_3)\, w_4 \sigma'(z_4)\, \frac{\partial C}{\partial a_4} .
#
# Since :math:`\sigma' = \sigma(1 - \sigma) \le 1/4`, each factor
# :math:`|w_j \sigma'(z_j)|` is below :math:`1/4` as long as :math:`|w_j| < 1`,
# and the gradient is divided by 4 or more per layer. In the real network the
# same happens with matrices: :math:`\delta^l = \sigma'(z^l) \odot (W^{l+1})^T
# \delta^{l+1}`. We measure, on the 4-hidden-layer network at initialisation,
# the mean of :math:`\sigma'(z)` in each layer and the factor
# :math:`\|\delta^l\| / \|\delta^{l+1}\|` by which the gradient shrinks.
traces = diagnostics.trace(make(sizes[4]), X, y)
z = torch.linspace(-8, 8, 401)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
ax1.plot(z, torch.sigmoid(z), label=r"$\sigma(z)$")
ax1.plot(z, torch.sigmoid(z) * (1 - torch.sigmoid(z)), label=r"$\sigma'(z) \leq 1/4$")
all_z = torch.cat([t.z.flatten() for t in traces[:-1]]).cpu()
low, high = torch.quantile(all_z[::10], torch.tensor([0.01, 0.99])).tolist()
ax1.axvspan(low, high, color="gray", alpha=0.2, label="98% of the hidden $z$")
ax1.set(xlabel="pre-activation $z$", title="The sigmoid and its derivative")
ax1.legend()
sig_prime = [(t.a * (1 - t.a)).mean().item() for t in traces[:-1]]
shrink = [(traces[i].z_grad.norm() / traces[i + 1].z_grad.norm()).item() for i in range(4)]
ax2.bar(np.arange(1, 5) - 0.2, sig_prime, width=0.4, label=r"mean $\sigma'(z^l)$")
ax2.bar(np.arange(1, 5) + 0.2, shrink, width=0.4, label=r"$\|\delta^l\| / \|\delta^{l+1}\|$")
ax2.axhline(0.25, color="gray", ls="--", lw=1)
ax2.set(
    xlabel="hidden layer $l$", xticks=[1, 2, 3, 4], ylim=(0, 0.35), title="Factors of the product"
)
ax2.legend(ncols=2, loc="upper center")
plt.show()
print("mean sigma'(z) per layer:", np.round(sig_prime, 3), " shrink factors:", np.round(shrink, 3))

# %%
# Is it enough to increase the weights?
# -------------------------------------
# *Est-ce qu'il suffit d'augmenter les valeurs des w ?* We multiply every
# weight of the 4-hidden-layer network by a factor :math:`c` and measure, at
# initialisation, the share of saturated sigmoids (outputs outside
# :math:`[0.01, 0.99]`, where :math:`\sigma' < 0.01`) and the learning speed of
# each layer; then we train the network from each starting point.
scales = pick(full=[0.5, 1, 2, 4, 8, 16, 32, 64], quick_value=[1, 4, 16, 64])
scaled = [at_init(sizes[4], scale=c, seeds=range(pick(full=3, quick_value=1))) for c in scales]
for c, st in zip(scales, scaled, strict=True):
    print(
        f"c = {c:>4}: saturated {100 * np.mean(st['saturated'][:-1]):5.1f}%, speed of layers "
        f"1-4: {'  '.join(f'{v:.2e}' for v in st['bias_grad_norm'][:-1])}"
    )

fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
axes[0].plot(
    scales,
    [100 * s["saturated"][:-1] for s in scaled],
    marker="o",
    label=[f"layer {i + 1}" for i in range(4)],
)
axes[0].set(
    xlabel="weight scale $c$", ylabel="saturated units (%)", title="Near-binary activations"
)
for i in range(4):
    axes[1].plot(
        scales, [s["bias_grad_norm"][i] for s in scaled], marker="o", label=f"layer {i + 1}"
    )
axes[1].set(
    yscale="log",
    xlabel="weight scale $c$",
    ylabel=r"$\|\partial C / \partial b^l\|$",
    title="Learning speed at initialisation",
)
axes[1].legend()
for ax in axes[:2]:
    ax.set_xscale("log", base=2)
    ax.set_xticks(scales, [f"{c:g}" for c in scales])
for c in pick(full=[1, 4, 16, 64], quick_value=[1, 16]):
    _, history = train_and_record(sizes[4], scale=c)
    axes[2].plot(
        range(1, epochs + 1), 100 * np.array(history.test_acc), marker="o", label=f"c = {c}"
    )
axes[2].set(xlabel="epoch", ylabel="test accuracy (%)", title="Training from each start")
axes[2].legend()
plt.show()

# %%
# Larger weights first help: :math:`|w\,\sigma'(z)|` grows, the layers'
# speeds come closer and the network trains. Then they hurt: the
# pre-activations become large, most sigmoids answer 0 or 1 and their
# :math:`\sigma'(z) \approx 0` stops the gradient, while the few unsaturated
# units pass on products :math:`w\,\sigma'(z)` far above 1. The gradient
# norms stay large, but they no longer make a network that trains: compare
# the right panel. Nielsen's
# construction isolates this *explosion*: with :math:`w_j = 100` and biases
# chosen so that every :math:`z_j = 0` (where :math:`\sigma' = 1/4`), each
# factor is :math:`w_j \sigma'(z_j) = 25`. We compute
# :math:`\partial C / \partial b_l` by autograd on a chain of 6 neurons with
# :math:`C = a_6`.


def chain_bias_grads(w, x=1.0, centred=False):
    b = torch.zeros(len(w), dtype=torch.float64, requires_grad=True)
    a = torch.tensor(x, dtype=torch.float64)
    for j in range(len(w)):
        shift = -w[j] * a.detach() if centred else 0.0  # makes z_j = 0 exactly
        a = torch.sigmoid(w[j] * a + b[j] + shift)
    a.backward()
    return b.grad.abs()


w_normal = torch.randn(6, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
big = torch.full((6,), 100.0, dtype=torch.float64)
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.plot(range(1, 7), chain_bias_grads(w_normal), marker="o", label=r"$w_j \sim N(0, 1)$: vanishing")
ax.plot(
    range(1, 7),
    chain_bias_grads(big, centred=True),
    marker="o",
    label=r"$w_j = 100$, $z_j = 0$: exploding",
)
ax.set(
    xlabel="neuron $l$",
    ylabel=r"$|\partial C / \partial b_l|$",
    yscale="log",
    title="An unstable gradient",
)
ax.legend()
plt.show()
print(f"w_j = 100 and b_j = 0 instead (saturated): dC/db_1 = {chain_bias_grads(big)[0]:.1e}")

# %%
# The same measurements with ReLU
# -------------------------------
# :math:`\mathrm{ReLU}'(z)` is 1 for an active unit: no factor :math:`1/4`.
# What remains is the weights: with PyTorch's default initialisation each
# layer still shrinks the signal (variance :math:`1/(3n)` per weight where a
# ReLU needs :math:`2/n`), with He's initialisation (``kaiming_normal``) the
# layers learn at comparable speeds.
relu = {
    "sigmoid, default init": at_init(sizes[4]),
    "ReLU, default init": at_init(sizes[4], "relu"),
    "ReLU, He init": at_init(sizes[4], "relu", "kaiming_normal"),
}
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
for label, st in relu.items():
    ax1.plot(range(1, 5), st["bias_grad_norm"][:-1], marker="o", label=label)
    print(
        f"{label:>22}: speed of layer 4 / layer 1 = "
        f"{st['bias_grad_norm'][3] / st['bias_grad_norm'][0]:.1f}"
    )
ax1.set(
    xlabel="hidden layer",
    ylabel=r"$\|\partial C / \partial b^l\|$",
    yscale="log",
    xticks=[1, 2, 3, 4],
    title="At initialisation (4 hidden layers)",
)
ax1.legend()
speed, history = train_and_record(sizes[4], "relu", "kaiming_normal", lr=0.1)
ax2.plot(smooth(speed), label=[f"hidden layer {i + 1}" for i in range(4)])
ax2.set(
    xlabel="step",
    yscale="log",
    ylabel="learning speed",
    title=f"ReLU + He init, SGD lr 0.1: test acc. {100 * history.test_acc[-1]:.1f}%",
)
ax2.legend()
plt.show()

# %%
# What to remember
# ----------------
# * In a deep sigmoid network the gradient shrinks layer after layer towards the
#   input: each layer multiplies it by :math:`w\,\sigma'(z)`, and
#   :math:`\sigma' \le 1/4`. The first layers learn slowest.
# * Larger weights are no cure: they saturate the sigmoids (:math:`\sigma' \to
#   0`), or, where the pre-activations stay small, make the product explode.
#   The gradient is *unstable*.
# * ReLU removes the :math:`1/4` factor; an initialisation matched to the
#   activation (next pages) keeps the layers' speeds comparable.
#
# Further reading
# ---------------
# Chapter 5 of Nielsen's book :cite:p:`nielsen2015neural`, Karpathy's
# *Yes you should understand backprop* :cite:p:`karpathy2016backprop`, and
# Glorot and Bengio's study of deep sigmoid networks
# :cite:p:`glorot2010understanding`.

# sphinx_gallery_thumbnail_number = 1
