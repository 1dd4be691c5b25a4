r"""
Weight initialisation
=====================

*Le choix de la méthode d'initialisation est très important.* The lecture asks
what happens if all weights start equal, or if two neurons fed by the same
inputs start equal; what a too small or too large variance does; and gives the
rules that fix the variance from the number of inputs :math:`n` (and outputs
:math:`m`) of a layer: :math:`U(-1/\sqrt{n}, 1/\sqrt{n})`, Xavier/Glorot's
:math:`U(\pm\sqrt{6/(n+m)})` and, for ReLU, He's :math:`N(0, 2/n)`. It ends
with another option: start from a network trained on another task.

Each question is answered by an experiment below, on MNIST, with the schemes
of :mod:`mla_course.init`. As in Glorot and Bengio's paper, we follow the
activations and the back-propagated gradients layer by layer through a deep
network (8 hidden layers of 128 units) at initialisation.
"""

# %%
# All weights equal: the neurons stay identical
# ---------------------------------------------
# *Que se passe-t-il si tous les poids sont initialisés avec la même valeur ?*
# Every hidden unit of a layer then computes the same function of the input,
# receives the same gradient and gets the same update: they stay copies of one
# another for ever, and a layer of 30 units is worth one. We train a
# 784-30-30-10 sigmoid network from constant weights (``"constant"``, 0.01) and
# from Xavier's initialisation, then measure the largest difference between
# two units' incoming weights.
import matplotlib.pyplot as plt
import torch

from mla_course import diagnostics, plots
from mla_course.data import load_tensors
from mla_course.init import init_
from mla_course.models import MLP
from mla_course.train import fit
from mla_course.utils import get_device, pick

plots.use_style()
device = get_device()
train = load_tensors("mnist", "train", device=device, limit=pick(full=10_000, quick_value=2000))
test = load_tensors("mnist", "test", device=device, limit=2000)
X, y = train[0][:1000], train[1][:1000]  # a fixed batch for the statistics

models = {}
for scheme, kw in {"constant": {"value": 0.01}, "xavier_uniform": {}}.items():
    torch.manual_seed(0)
    models[scheme] = init_(MLP([784, 30, 30, 10], "sigmoid"), scheme, **kw).to(device)
    optimizer = torch.optim.SGD(models[scheme].parameters(), lr=0.5)
    history = fit(models[scheme], optimizer, train, test, epochs=pick(full=3, quick_value=1))
    w = models[scheme].linears[0].weight.detach()  # (30 units, 784 inputs)
    spread = (w - w[0]).abs().max().item()  # 0 if every unit is a copy of unit 0
    print(
        f"{scheme:>14}: test accuracy {100 * history.test_acc[-1]:.1f}%, "
        f"max |w_j - w_0| in layer 1 = {spread:.2e}"
    )
assert (models["constant"].linears[0].weight == models["constant"].linears[0].weight[0]).all()

# %%
# The incoming weights of the first 8 units of layer 1, as images, after
# training: one picture repeated, against 8 different detectors.
for scheme, model in models.items():
    plots.show_images(
        model.linears[0].weight[:8].detach().cpu(),
        [f"unit {j}" for j in range(8)],
        symmetric=True,
        cmap="RdBu_r",
        suptitle=f"Layer 1 after training, {scheme}",
    )
plt.show()

# %%
# Two neurons with the same inputs and the same initial weights
# -------------------------------------------------------------
# *Que se passe-t-il si les poids de deux neurones connectés à la même entrée
# sont initialisés avec les mêmes valeurs ?* In a randomly initialised
# network, we copy unit 0's incoming weights and bias into unit 1. Their
# gradients are :math:`\partial C / \partial z_j = \sigma'(z_j) \sum_k W_{kj}
# \delta_k`: equal only if their *outgoing* weights :math:`W_{kj}` are equal
# too. We train both variants and follow :math:`\|w_1 - w_0\|`.


def twins(copy_outgoing):
    torch.manual_seed(1)
    model = MLP([784, 30, 10], "sigmoid").to(device)
    first, second = model.linears
    with torch.no_grad():
        first.weight[1], first.bias[1] = first.weight[0], first.bias[0]
        if copy_outgoing:
            second.weight[:, 1] = second.weight[:, 0]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    gaps = []
    for xb, yb in zip(train[0][:6400].split(64), train[1][:6400].split(64), strict=True):
        gaps.append((first.weight[1] - first.weight[0]).norm().item())
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(xb), yb).backward()
        optimizer.step()
    return gaps


fig, ax = plt.subplots(figsize=(6, 3.5))
symmetric = twins(copy_outgoing=True)
ax.plot(twins(copy_outgoing=False), label="same incoming weights only")
ax.plot(symmetric, label="same incoming and outgoing weights")
ax.set(xlabel="step", ylabel=r"$\|w_1 - w_0\|$", title="Do the twins stay twins?")
ax.legend()
plt.show()
assert max(symmetric) == 0  # exact copies, step after step

# %%
# Units that are exact copies in the whole network get exactly the same
# updates and remain copies: the lecture's *tous les poids évoluent de la même
# manière*. Different outgoing weights are enough to tell them apart, but
# they start from the same detector and only slowly drift apart, a waste of
# units. Random initial weights break the symmetry from the first step.

# %%
# Too small, too large, and the rules: activations layer by layer
# ---------------------------------------------------------------
# A deep network, 8 hidden layers of 128 tanh units, at initialisation, on
# 1,000 training images. Each curve is the distribution of one layer's
# activations (left) or of the gradient with respect to its pre-activations
# (right), normalised histograms as in Glorot and Bengio's figures 6 and 7.
# :math:`N(0, 0.01^2)` is too small: every layer multiplies the variance by
# :math:`n \sigma^2 \approx 0.01`. :math:`N(0, 1)` is too large: the units
# saturate at :math:`\pm 1`.
import numpy as np

deep = [784, *[128] * 8, 10]
schemes = {
    "N(0, 0.01²)": ("normal", {"std": 0.01}),
    "N(0, 1)": ("normal", {"std": 1.0}),
    "U(±1/√n)": ("uniform_fan_in", {}),
    "Xavier": ("xavier_uniform", {}),
    "He": ("kaiming_normal", {}),
}


def traced(activation, scheme, kw, seed=0):
    torch.manual_seed(seed)
    return diagnostics.trace(init_(MLP(deep, activation), scheme, **kw).to(device), X, y)


shown = ["N(0, 0.01²)", "N(0, 1)", "U(±1/√n)", "Xavier"]
fig, axes = plt.subplots(len(shown), 2, figsize=(10, 2.2 * len(shown)), sharex="col")
colours = plt.cm.viridis(np.linspace(0, 0.9, 8))  # layer 1 dark to layer 8 light
for row, label in zip(axes, shown, strict=True):
    traces = traced("tanh", *schemes[label])
    scale = traces[-2].z_grad.std()  # gradients in units of the last hidden layer's
    for i, t in enumerate(traces[:-1]):
        row[0].hist(
            t.a.flatten().cpu(),
            bins=80,
            range=(-1, 1),
            density=True,
            histtype="step",
            color=colours[i],
        )
        row[1].hist(
            (t.z_grad / scale).flatten().cpu(),
            bins=80,
            range=(-4, 4),
            density=True,
            histtype="step",
            color=colours[i],
        )
    row[0].set(ylabel=label, yscale="log")
    row[1].set(yscale="log")
axes[0, 0].set_title("activations $a$ of each layer (tanh)")
axes[0, 1].set_title(r"$\partial C / \partial z$ of each layer")
axes[-1, 0].set_xlabel("activation value")
axes[-1, 1].set_xlabel("back-propagated gradient / its std in layer 8")
layers = plt.cm.ScalarMappable(
    plt.matplotlib.colors.BoundaryNorm(np.arange(0.5, 9), 8),
    plt.matplotlib.colors.ListedColormap(colours),
)
fig.colorbar(layers, ax=axes, ticks=range(1, 9), label="hidden layer", shrink=0.5)
plt.show()

# %%
# The same, summarised by one number per layer: the variance of the
# activations and of the back-propagated gradients, for the sigmoid, tanh and
# ReLU, mean over 3 initialisations (1 in quick mode). A good scheme keeps
# both roughly flat across layers: Xavier for tanh, He for ReLU. For the sigmoid, whose
# derivative is at most 1/4, the schemes that keep its units unsaturated all
# let the gradient shrink towards the input; :math:`N(0, 1)` keeps it flat, but
# with near-binary activations (variance close to 1/4, that of a coin flip).
fig, axes = plt.subplots(2, 3, figsize=(13, 7), sharex=True, layout="constrained")
for col, activation in enumerate(["sigmoid", "tanh", "relu"]):
    for label, (scheme, kw) in schemes.items():
        runs = [traced(activation, scheme, kw, seed) for seed in range(pick(full=3, quick_value=1))]
        act_var = np.mean([[t.a.var().item() for t in tr[:-1]] for tr in runs], axis=0)
        grad_var = np.mean([[t.z_grad.var().item() for t in tr[:-1]] for tr in runs], axis=0)
        axes[0, col].plot(range(1, 9), act_var, marker="o", label=label)
        axes[1, col].plot(range(1, 9), grad_var, marker="o", label=label)
    axes[0, col].set(yscale="log", title=f"{activation}: variance of the activations")
    axes[1, col].set(
        yscale="log",
        xlabel="hidden layer",
        title=f"{activation}: variance of $\\partial C / \\partial z$",
    )
fig.legend(*axes[0, 0].get_legend_handles_labels(), loc="outside lower center", ncols=5)
plt.show()

# %%
# Effect on training
# ------------------
# The same deep tanh and ReLU networks trained with plain SGD (learning rate
# 0.05, 2 epochs on 20,000 images), from each initialisation,
# over 2 seeds (:func:`~mla_course.experiments.sweep`). ``"normal"`` is the
# too-small :math:`N(0, 0.01^2)`; ``"default"`` is PyTorch's
# :math:`U(\pm 1/\sqrt{n})`, whose variance :math:`1/(3n)` shrinks the signal
# at every layer (figure above). Compare the table with the variance plots:
# the schemes that keep the variances flat are the ones that train.
from mla_course.experiments import Config, sweep

base = Config(
    hidden=(128,) * 8,
    lr=0.05,
    epochs=pick(full=2, quick_value=1),
    n_train=pick(full=20_000, quick_value=2000),
    n_test=pick(full=None, quick_value=2000),
)
inits = ["normal", "default", "xavier_uniform", "kaiming_normal"]
configs = {f"{a}, {i}": base.replace(activation=a, init=i) for a in ("tanh", "relu") for i in inits}
table = sweep(configs, seeds=range(pick(full=2, quick_value=1)), device=device)
table

# %%
# The sweep's names take no arguments, so the too-large :math:`N(0, 1)` is
# trained here by hand, one seed, same data and optimiser
# (:func:`~mla_course.experiments.build` then :func:`~mla_course.init.init_`).
from mla_course.experiments import build, load_data

too_large = {}
for activation in ("tanh", "relu"):
    config = base.replace(activation=activation)
    model, optimizer = build(config, seed=0, device=device)
    init_(model, "normal", std=1.0)
    too_large[activation] = fit(
        model,
        optimizer,
        *load_data(config, device),
        epochs=config.epochs,
        seed=0,
        on_divergence="stop",
    )
    h = too_large[activation]
    print(
        f"{activation}, N(0, 1): "
        + (
            f"diverged at step {h.diverged_at}"
            if h.diverged_at
            else f"test accuracy {100 * h.test_acc[-1]:.1f}%"
        )
    )


# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
for ax, activation in zip(axes, ["tanh", "relu"], strict=True):
    window = max(1, len(table[f"{activation}, default"].histories[0].step_loss) // 60)
    for init in inits:
        ax.plot(
            *plots.block_average(table[f"{activation}, {init}"].curve("step_loss")[0], window),
            label=init,
        )
    history = too_large[activation]
    label = "N(0, 1), one seed" + (
        f": diverged at step {history.diverged_at}" if history.diverged_at is not None else ""
    )
    ax.plot(*plots.block_average(history.step_loss, window), ls="--", color="gray", label=label)
    ax.set(xlabel="step", title=f"8 hidden layers of 128, {activation}", yscale="log")
    ax.legend()
axes[0].set_ylabel("training loss")
plt.show()

# %%
# A network trained on another task as the starting point
# -------------------------------------------------------
# *Possibilité d'utiliser un réseau pré-appris comme initialisation.* We train
# the network of Question 1 (ReLU) to recognise the digits 0 to 4, then keep
# its two hidden layers, put a new output layer on top and train it on the
# digits 5 to 9 with only 500 labelled examples. The same network started
# from a random initialisation is the reference.
X_all, y_all = load_tensors(
    "mnist", "train", device=device, limit=pick(full=30_000, quick_value=4000)
)
X_test, y_test = load_tensors("mnist", "test", device=device)
low, high = y_all < 5, y_all >= 5
target_train = (X_all[high][:500], y_all[high][:500] - 5)
target_test = (X_test[y_test >= 5], y_test[y_test >= 5] - 5)

torch.manual_seed(0)
source = MLP([784, 120, 80, 5], "relu").to(device)
fit(
    source,
    torch.optim.SGD(source.parameters(), lr=0.1),
    (X_all[low], y_all[low]),
    target_test,
    epochs=pick(full=2, quick_value=1),
)

curves = {}
for start in ("random", "pre-trained on digits 0-4"):
    torch.manual_seed(1)
    model = MLP([784, 120, 80, 5], "relu").to(device)
    if start != "random":
        for new, old in zip(model.linears[:2], source.linears[:2], strict=True):
            new.load_state_dict(old.state_dict())  # copy the hidden layers; the output layer is new
    history = fit(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        target_train,
        target_test,
        epochs=pick(full=30, quick_value=5),
        batch_size=50,
    )
    curves[start] = 100 * np.array(history.test_acc)
    print(
        f"{start:>26}: test accuracy on digits 5-9 after {history.epochs} epochs: "
        f"{curves[start][-1]:.1f}%"
    )

fig, ax = plt.subplots(figsize=(6, 3.6))
plots.plot_curves(
    curves,
    ax=ax,
    xlabel="epoch (500 examples)",
    ylabel="test accuracy (%)",
    title="Digits 5-9 from 500 examples",
)
plt.show()

# %%
# What to remember
# ----------------
# * The symmetry must be broken: units with identical incoming *and* outgoing
#   weights stay identical, so draw the weights at random.
# * The variance matters: too small and the signal dies out layer after layer,
#   too large and tanh or sigmoid units saturate. Scale it with the number of
#   inputs (and outputs): Xavier for tanh, He for ReLU keep the variances of
#   the activations and of the gradients roughly constant across layers.
# * A network trained on a related task is another starting point: here it
#   starts ahead of the random initialisation on the new task (last figure).
#
# Further reading
# ---------------
# Glorot and Bengio :cite:p:`glorot2010understanding`, He et al.
# :cite:p:`he2015delving`, chapter 8.4 of the Deep Learning book
# :cite:p:`goodfellow2016deep`, and the CS231n notes :cite:p:`cs231n`.

# sphinx_gallery_thumbnail_number = 4
