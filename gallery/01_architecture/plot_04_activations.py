r"""
Activation functions
====================

The lecture goes through the usual activation functions: the sigmoid (values in
:math:`[0, 1]`, saturates, not centred), tanh (centred, saturates too), ReLU
(*la plus utilisée actuellement*: no saturation for :math:`x > 0`, cheap, but
some units may die), Leaky ReLU and PReLU (a small slope for :math:`x < 0`, no
dead units), and the smooth modern ones, ELU, SELU, GELU (the default of
Transformers) and SiLU/Swish. Its exercise: *reprendre le réseau de
reconnaissance des chiffres manuscrits (base MNIST) et tester différentes
fonctions d'activation; reporter les résultats obtenus.*

We draw each function and its derivative, train the network of Question 1
(784-120-80-10) with each of them over several seeds, time them, and look at
the dead units of ReLU: how many there are and what the learning rate and the
initialisation do to them. To keep the page short the networks are trained on
the first 30,000 training images only, with one common recipe (plain SGD,
learning rate 0.1, mini-batches of 64, 2 epochs).
"""

# %%
# The functions and their derivatives
# -----------------------------------
# Derivatives by autograd. The dotted line marks 1/4, the largest slope of the
# sigmoid; where the derivative is 0 (ReLU for :math:`x < 0`) a unit passes no
# gradient back.
import matplotlib.pyplot as plt
import torch

from mla_course import plots
from mla_course.models import ACTIVATIONS, make_activation

plots.use_style()
palette = [c for c in plots.OKABE_ITO if c != "#F0E442"] + ["#999999", "#882255"]  # no pale yellow
colours = dict(zip(ACTIVATIONS, palette, strict=True))  # one colour per activation, on every figure
x = torch.linspace(-4, 4, 401, requires_grad=True)
fig, axes = plt.subplots(3, 3, figsize=(10, 7.5), sharex=True, sharey=True)
for ax, name in zip(axes.flat, ACTIVATIONS, strict=True):
    y = make_activation(name)(x)
    (dy,) = torch.autograd.grad(y.sum(), x)  # element-wise: d(sum y)/dx_i = f'(x_i)
    ax.plot(x.detach(), y.detach(), label="$f(x)$")
    ax.plot(x.detach(), dy, label="$f'(x)$")
    ax.axhline(0.25, color="gray", ls=":", lw=1)
    ax.set(title=name, ylim=(-2, 4))
for ax in axes[-1]:
    ax.set_xlabel("$x$")
axes[0, 0].legend(loc="upper left")
plt.show()

# %%
# The exercise: the network of Question 1 with each activation
# ------------------------------------------------------------
# :func:`~mla_course.experiments.sweep` trains one configuration per activation
# over several seeds (initial weights and mini-batch order) and reports
# mean ± standard deviation. Everything else is the same: default PyTorch
# initialisation, SGD with learning rate 0.1.
from mla_course.experiments import Config, sweep
from mla_course.utils import get_device, pick

device = get_device()
n_train = pick(full=30_000, quick_value=2000)
base = Config(
    activation="sigmoid",
    lr=0.1,
    epochs=pick(full=2, quick_value=1),
    n_train=n_train,
    n_test=pick(full=None, quick_value=2000),
)
seeds = range(pick(full=3, quick_value=1))
table = sweep({name: base.replace(activation=name) for name in ACTIVATIONS}, seeds, device)
# The sweep trains all the networks together, so it gives no time per
# activation: we time each activation separately below instead.
table

# %%
# The ranking, best first, with the best and worst test accuracy:
ranking = sorted(table, key=lambda name: -table[name].mean("test_acc"))
print(" > ".join(ranking))
print(f"best {ranking[0]}: {table[ranking[0]]}; worst {ranking[-1]}: {table[ranking[-1]]}")

# %%
# Training curves, mean over seeds (moving average of the mini-batch loss). The
# saturating functions are on the left, the rectifiers and smooth
# rectifiers on the right, with ReLU in both as the reference.
import torch.nn.functional as F

groups = {
    "Saturating and piecewise linear": ["sigmoid", "tanh", "relu", "leaky_relu", "prelu"],
    "Smooth rectifiers": ["relu", "elu", "selu", "gelu", "silu"],
}
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
for ax, (title, names) in zip(axes, groups.items(), strict=True):
    for name in names:
        mean, _ = table[name].curve("step_loss")
        window = max(1, len(mean) // 60)
        ax.plot(*plots.block_average(mean, window), label=name, color=colours[name])
    ax.set(xlabel="step (mini-batch of 64)", yscale="log", title=title)
    ax.legend()
axes[0].set_ylabel("training loss")
plt.show()

# %%
# What does each activation cost?
# -------------------------------
# The lecture weighs performance against cost (*calcul de l'exponentielle*).
# We time 100 training steps of the same network for each activation (best of
# 5 repeats, on this build's device). On a network this small the matrix
# products dominate, so the differences are modest, and on a busy machine
# they are within the noise of the measurement.
import time

from mla_course.data import load_tensors
from mla_course.models import MLP

X, y = load_tensors("mnist", "train", device=device, limit=n_train)
xb, yb = X[:64], y[:64]


steps, repeats = pick(full=100, quick_value=10), pick(full=5, quick_value=2)
runs = {}  # name -> (model, optimizer)
for name in ACTIVATIONS:
    model = MLP([784, 120, 80, 10], name).to(device)
    runs[name] = model, torch.optim.SGD(model.parameters(), lr=0.01)
times = dict.fromkeys(ACTIVATIONS, float("inf"))
for _ in range(repeats):  # round robin, so that a busy moment hits every activation alike
    for name, (model, optimizer) in runs.items():
        start = time.perf_counter()
        for _ in range(steps):
            optimizer.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            optimizer.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times[name] = min(times[name], 1000 * (time.perf_counter() - start) / steps)  # ms

fig, ax = plt.subplots(figsize=(7, 3.2))
ax.barh(list(times), list(times.values()), color=[colours[n] for n in times])
ax.invert_yaxis()
ax.set(xlabel="time per training step (ms, batch of 64)", title=f"Cost of a step on {device.type}")
plt.show()
print("  ".join(f"{k}: {v:.2f} ms" for k, v in times.items()))

# %%
# Dead ReLU units
# ---------------
# A ReLU unit whose pre-activation is negative for every input outputs 0 and
# receives no gradient: it never recovers. *Attention à l'initialisation des
# poids; attention au pas de la descente.* We count the units of each hidden
# layer that are zero on 10,000 training images
# (:func:`~mla_course.diagnostics.activation_stats`), at initialisation and
# after training with several learning rates, for PyTorch's default
# initialisation and He's (``kaiming_normal``).
from mla_course import diagnostics
from mla_course.experiments import run
from mla_course.init import init_

probe = X[:10_000]
lrs = pick(full=[0.01, 0.1, 0.5, 1.0], quick_value=[0.1, 1.0])
inits = ["default", "kaiming_normal"]
dead = {}  # (init, lr) -> share of dead units in hidden layers 1 and 2 (%)
for init in inits:
    torch.manual_seed(0)
    model = init_(MLP([784, 120, 80, 10], "relu"), init).to(device)
    dead[init, 0.0] = 100 * diagnostics.activation_stats(model, probe)["dead"][:2]
    for lr in lrs:
        config = base.replace(activation="relu", init=init, lr=lr, epochs=1)
        history, model = run(config, seed=0, device=device, return_model=True)
        share = 100 * diagnostics.activation_stats(model, probe)["dead"][:2]
        dead[init, lr] = share if history.diverged_at is None else share * float("nan")
        print(
            f"{init:>14}, lr = {lr:<4}: dead units {share.round(1)} % "
            f"(layers 1, 2), test accuracy {100 * history.final()['test_acc']:.1f}%"
            + (f", diverged at step {history.diverged_at}" if history.diverged_at else "")
        )

# %%
# The bars show the share of dead units in the first hidden layer (left) and
# the second (right); "init" is before any training.
import numpy as np

fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), sharey=True)
labels = ["init", *[f"lr={lr:g}" for lr in lrs]]
for layer, ax in enumerate(axes):
    for k, init in enumerate(inits):
        values = np.array([dead[init, lr][layer] for lr in [0.0, *lrs]])
        bars = ax.bar(
            np.arange(len(labels)) + 0.4 * k - 0.2, np.nan_to_num(values), width=0.4, label=init
        )
        ax.bar_label(bars, ["diverged" if np.isnan(v) else f"{v:.0f}" for v in values], fontsize=8)
    ax.set(xticks=range(len(labels)), xticklabels=labels, title=f"Hidden layer {layer + 1}")
    ax.legend(loc="upper left")
axes[0].set_ylabel("dead ReLU units (%)")
plt.show()

# %%
# What to remember
# ----------------
# * Saturating activations (sigmoid, tanh) have small derivatives away from 0,
#   which slows learning with a common recipe; the rectifiers and their smooth
#   variants train faster here (see the table: same network, same budget).
# * ReLU units can die for good; too large a learning rate is the usual cause,
#   and the initialisation changes how large is too large. Leaky ReLU, PReLU,
#   ELU, SELU, GELU and SiLU have no dead units by construction.
# * Rankings depend on the recipe: redo the comparison with your learning
#   rate, optimiser and initialisation before trusting it.
#
# Further reading
# ---------------
# ReLU in deep networks :cite:p:`krizhevsky2012imagenet`, Leaky ReLU
# :cite:p:`maas2013rectifier`, PReLU and He's initialisation
# :cite:p:`he2015delving`, ELU :cite:p:`clevert2015fast`, SELU
# :cite:p:`klambauer2017self`, GELU :cite:p:`hendrycks2016gaussian`, SiLU/Swish
# :cite:p:`ramachandran2017searching`, and the CS231n notes :cite:p:`cs231n`.

# sphinx_gallery_thumbnail_number = 1
