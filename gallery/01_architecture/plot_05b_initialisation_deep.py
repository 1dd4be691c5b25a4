r"""
Weight initialisation in a deep network
=======================================

The :doc:`previous page <plot_05_initialisation>` gave the rules that scale
the weights with the fan-in. The lecture asks what a too small or too large
variance does to a deep network, and offers another starting point: a
network trained on another task. As in Glorot and Bengio's paper
:cite:p:`glorot2010understanding`, we follow the activations and the
back-propagated gradients layer by layer through 8 hidden layers of 128
units at initialisation, then train the same networks from each scheme.
"""

# %%
# Too small, too large, and the rules
# -----------------------------------
# 8 hidden layers of 128 tanh units, at initialisation, on 1,000 training
# images. Each curve is the distribution of one layer's activations (left)
# or of the gradient with respect to its pre-activations (right), as in
# Glorot and Bengio's figures 6 and 7. :math:`N(0, 0.01^2)` is too small:
# each layer multiplies the variance by about :math:`n \sigma^2 \approx
# 0.01`. :math:`N(0, 1)` is too large: the units saturate at :math:`\pm 1`.
import matplotlib.pyplot as plt
import numpy as np
import torch

from mla_course import diagnostics, plots
from mla_course.claims import check, check_order
from mla_course.data import load_tensors
from mla_course.init import init_
from mla_course.models import MLP
from mla_course.settings import pick, seed_everything

plots.use_style()
X, y = load_tensors("mnist", "train", limit=1000)
deep = [784, *[128] * 8, 10]
schemes = {
    "N(0, 0.01²)": ("normal", {"std": 0.01}),
    "N(0, 1)": ("normal", {"std": 1.0}),
    "U(±1/√n)": ("uniform_fan_in", {}),
    "Xavier": ("xavier_uniform", {}),
    "He": ("kaiming_normal", {}),
}


def traced(activation, scheme, kw, seed=0):
    """Per hidden layer: activations and gradients at initialisation."""
    seed_everything(seed)
    model = init_(MLP(deep, activation), scheme, **kw)
    return diagnostics.trace(model, X, y)[:-1]


# %%
# The distributions for three of the schemes, one colour per layer (the
# colour bar, from layer 1 to layer 8):
from matplotlib.colors import BoundaryNorm, ListedColormap

shown = ["N(0, 0.01²)", "N(0, 1)", "Xavier"]
fig, axes = plt.subplots(3, 2, figsize=(10.5, 6.6), sharex="col")
colours = plt.cm.viridis(np.linspace(0, 0.9, 8))  # layer 1 dark, 8 light
hist = {"bins": 80, "density": True, "histtype": "step"}
for row, label in zip(axes, shown, strict=True):
    traces = traced("tanh", *schemes[label])
    scale = traces[-1].z_grad.std()  # in units of the last hidden layer's
    for t, c in zip(traces, colours, strict=True):
        row[0].hist(t.a.flatten(), range=(-1, 1), color=c, **hist)
        row[1].hist(
            (t.z_grad / scale).flatten(), range=(-4, 4), color=c, **hist
        )
    row[0].set(ylabel=f"{label}\ndensity", yscale="log")
    row[1].set(ylabel="density", yscale="log")
axes[0, 0].set_title("activations $a$ of each layer (tanh)")
axes[0, 1].set_title(r"$\partial C / \partial z$ of each layer")
axes[-1, 0].set_xlabel("activation value")
axes[-1, 1].set_xlabel("gradient / its std in layer 8")
layers = plt.cm.ScalarMappable(
    BoundaryNorm(np.arange(0.5, 9), 8), ListedColormap(colours)
)
fig.colorbar(layers, ax=axes, ticks=range(1, 9), label="hidden layer")
plt.show()

# %%
# The same, one number per layer
# ------------------------------
# The variance of the activations and of the back-propagated gradients, for
# the sigmoid, tanh and ReLU, mean over 3 initialisations. A good scheme
# keeps both roughly flat across layers.
variances = {}  # (activation, scheme) -> (activations, gradients), (8,) each
for activation in ("sigmoid", "tanh", "relu"):
    for label, (scheme, kw) in schemes.items():
        runs = [traced(activation, scheme, kw, seed) for seed in range(3)]
        a = np.mean([[t.a.var().item() for t in r] for r in runs], axis=0)
        g = np.mean([[t.z_grad.var().item() for t in r] for r in runs], axis=0)
        variances[activation, label] = a, g
        if (activation, label) == ("tanh", "N(0, 1)"):  # share of |a| > 0.99
            shares = [
                (t.a.abs() > 0.99).float().mean() for r in runs for t in r
            ]
            saturated = min(shares).item()
fig, axes = plt.subplots(2, 3, figsize=(13, 6.5), sharex=True)
for (activation, label), (a, g) in variances.items():
    col = ["sigmoid", "tanh", "relu"].index(activation)
    axes[0, col].semilogy(range(1, 9), a, marker="o", label=label)
    axes[1, col].semilogy(range(1, 9), g, marker="o", label=label)
    axes[0, col].set_title(f"{activation}: Var(activations)")
    axes[1, col].set(title=f"{activation}: Var(dC/dz)", xlabel="hidden layer")
for ax in axes.flat:  # each panel: the variance named in its title
    ax.set_ylabel("variance")
axes[0, 0].legend(fontsize=8)
plt.show()


# %%
# Over 8 layers, Xavier keeps tanh's variances within a factor of 20, He
# keeps ReLU's within a factor of 3, where the lecture's
# :math:`U(\pm 1/\sqrt{n})` loses a factor of over 1,000 with either, and
# the too-small :math:`N(0, 0.01^2)` kills every signal. The too-large
# :math:`N(0, 1)` saturates most tanh units in every layer (the share of
# :math:`|a| > 0.99`) and makes ReLU's activations explode. For the sigmoid,
# whose slope is at most 1/4, every rule lets the gradient shrink towards
# the input (the :doc:`gradient dispersion page
# <plot_01_gradient_dispersion>`).
def spread(activation, label, which=0):  # last layer / first layer
    v = variances[activation, label][which]
    return v[-1] / v[0]


for act, label, bound in (("tanh", "Xavier", 20), ("relu", "He", 3)):
    ratios = [spread(act, label, k) for k in (0, 1)]
    ok = all(1 / bound < r < bound for r in ratios)
    shown = ", ".join(f"{r:.2g}" for r in ratios)
    check(
        f"{label} keeps {act}'s variances within a factor {bound}",
        ok,
        measured=f"layer 8 / layer 1: {shown} (activations, gradients)",
    )
lecture = max(spread(a, "U(±1/√n)") for a in ("tanh", "relu"))
tiny = max(spread(a, "N(0, 0.01²)") for a in ("tanh", "relu"))
grows = spread("relu", "N(0, 1)")
shrinks = min(spread("sigmoid", k, 1) for k in ("U(±1/√n)", "Xavier", "He"))
check(
    "U(±1/√n) divides Var(a) by over 1,000",
    lecture < 1e-3,
    measured=f"{lecture:.1e}",
)
check(
    "N(0, 0.01²) divides it by over a million",
    tiny < 1e-6,
    measured=f"{tiny:.1e}",
)
check(
    "N(0, 1) saturates most tanh units in every layer",
    saturated > 0.5,
    measured=f"{100 * saturated:.0f} % at least",
)
check(
    "N(0, 1) multiplies ReLU's Var(a) over a million-fold",
    grows > 1e6,
    measured=f"{grows:.1e}",
)
check(
    "with the sigmoid, every rule shrinks the gradient 1,000-fold",
    shrinks > 1e3,
    measured=f"{shrinks:.1e} at least",
)

# %%
# Effect on training
# ------------------
# The same deep tanh and ReLU networks trained with plain SGD (one learning
# rate for all, 0.05, one epoch on 10,000 images, 3 seeds): the too-small
# :math:`N(0, 0.01^2)` (``"normal"``), PyTorch's default
# :math:`U(\pm 1/\sqrt{n})`, and the rule matched to each activation.
from mla_course.config import Config
from mla_course.runs import sweep

base = Config(
    hidden=(128,) * 8,
    lr=0.05,
    epochs=1,
    n_train=pick(full=10_000, quick_value=2000),
    n_test=pick(full=None, quick_value=2000),
)
inits = {"tanh": "xavier_uniform", "relu": "kaiming_normal"}
configs = {
    f"{act}, {init}": base.replace(activation=act, init=init)
    for act, matched in inits.items()
    for init in ("normal", "default", matched)
}
table = sweep(configs, seeds=(0, 1, 2))
table

# %%
# At this step, the schemes that keep the variances flat are the ones that
# train: the matched rule beats PyTorch's default for both activations, and
# the too-small initialisation leaves both networks at chance level. (A
# larger step might rescue the default in part; the comparison is about
# this one step.)
for act, matched in inits.items():
    ours, default = table[f"{act}, {matched}"], table[f"{act}, default"]
    check_order(f"{act}: {matched} beats the default init", ours, default)
    acc = 100 * max(table[f"{act}, normal"].values("test_acc"))
    check(
        f"{act}: N(0, 0.01²) stays below 20 %",
        acc < 20,
        measured=f"{acc:.1f} %",
    )

# %%
# A network trained on another task as the starting point
# -------------------------------------------------------
# *Possibilité d'utiliser un réseau pré-appris comme initialisation.* We
# train the network of Question 1 (ReLU) on the digits 0 to 4, keep its two
# hidden layers, put a new output layer on top and train it on the digits 5
# to 9 from 500 labelled examples, against the same network started at
# random, at the same step (plain loop, since the data are a subset of
# classes). Each of the 5 seeds trains its own source network, so the seeds
# are independent replicates; seed by seed, both starts share the new output
# layer and the batch order, so the comparison is paired.
from mla_course.train import fit

X_all, y_all = load_tensors(
    "mnist", "train", limit=pick(full=30_000, quick_value=4000)
)
X_test, y_test = load_tensors("mnist", "test")
low, high = y_all < 5, y_all >= 5
source_train = (X_all[low], y_all[low])
source_test = (X_test[y_test < 5], y_test[y_test < 5])
target_train = (X_all[high][:500], y_all[high][:500] - 5)
target_test = (X_test[y_test >= 5], y_test[y_test >= 5] - 5)


def source_network(seed):
    """The network of Question 1, trained on the digits 0 to 4."""
    seed_everything(100 + seed)  # its own draws, apart from the target's
    source = MLP([784, 120, 80, 5], "relu")
    optimizer = torch.optim.SGD(source.parameters(), lr=0.1)
    fit(source, optimizer, source_train, source_test, epochs=2, seed=seed)
    return source


# %%
# The same network on the digits 5 to 9, from a random start or from the
# pre-trained hidden layers of that seed's source network.
def target_network(source, seed):
    seed_everything(seed)
    model = MLP([784, 120, 80, 5], "relu")
    if source is not None:  # copy the hidden layers, keep the new output
        pairs = zip(model.linears[:2], source.linears[:2], strict=True)
        for new, old in pairs:
            new.load_state_dict(old.state_dict())
    return model


epochs = pick(full=30, quick_value=5)
curves = {"random": [], "pre-trained on digits 0-4": []}
for seed in range(1, 6):
    source = source_network(seed)
    budget = {"epochs": epochs, "batch_size": 50, "seed": seed}
    for start, runs in curves.items():
        model = target_network(None if start == "random" else source, seed)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        h = fit(model, optimizer, target_train, target_test, **budget)
        runs.append(100 * np.array(h.test_acc))
fig, ax = plt.subplots(figsize=(6, 3.6))
bands = {k: (np.mean(v, 0), np.std(v, 0)) for k, v in curves.items()}
plots.plot_curves(bands, ax=ax, xlabel="epoch (500 examples)")
ax.set(ylabel="test accuracy (%)", title="Digits 5-9")
ax.legend()
plt.show()

# %%
# The pre-trained start ends ahead of the random one (paired over the 5
# seeds): a gain on this easy task.
random, pre = ([c[-1] for c in v] for v in curves.values())
kw = {"metric": "accuracy (%)", "paired": True, "full_only": True}
check_order(
    "the pre-trained start ends above the random one", pre, random, **kw
)

# %%
# What to remember
# ----------------
# * Too small a variance and the signal dies out layer after layer; too
#   large and tanh units saturate, ReLU signals explode.
# * Xavier for tanh and He for ReLU keep the variances of the activations
#   and of the gradients roughly constant across layers, and at the step
#   tried here those networks end far above PyTorch's default.
# * A network trained on a related task is another starting point: here it
#   ends ahead of a random start.
#
# Further reading
# ---------------
# Glorot and Bengio :cite:p:`glorot2010understanding`, He et al.
# :cite:p:`he2015delving`.

# %%
# Exercises
# ---------
#
# **Exercise 1.** Predict first: the gain of Xavier's rule for tanh is 5/3
# (``torch.nn.init.calculate_gain("tanh")``). With ``xavier_uniform`` and
# ``gain=5/3``, does the variance of tanh's activations in layer 8 end
# closer to that of layer 1 than with ``gain=1``?


# %% [solution]
# **Solution.** Yes: tanh's slope is below 1 away from 0, and the gain makes
# up for it, so the activations shrink less from layer to layer.
def flatness(gain):  # per init: |log(Var(a) of layer 8 / Var(a) of layer 1)|
    runs = [
        traced("tanh", "xavier_uniform", {"gain": gain}, s) for s in range(3)
    ]
    return [
        abs(np.log(r[-1].a.var().item() / r[0].a.var().item())) for r in runs
    ]


with_gain, without = flatness(5 / 3), flatness(1.0)
print(
    "|log(layer 8 / layer 1)|, gain 5/3:",
    ", ".join(f"{v:.2f}" for v in with_gain),
)
print(
    "|log(layer 8 / layer 1)|, gain 1:  ",
    ", ".join(f"{v:.2f}" for v in without),
)
check_order(
    "gain 5/3 keeps tanh's activation variance closer to flat",
    without,
    with_gain,
    metric="|log ratio|",
    paired=True,
)

# sphinx_gallery_thumbnail_number = 2
