r"""
Weight initialisation: symmetry and fan-in
==========================================

*Le choix de la méthode d'initialisation est très important.* The lecture
asks what happens if all weights start equal, or if two neurons fed by the
same inputs start equal; then what the variance of the weights should be,
for a neuron connected to many others. Its answer is a family of rules that
set the variance from the number of inputs :math:`n` (and outputs :math:`m`)
of a layer: :math:`U(-1/\sqrt{n}, 1/\sqrt{n})`, Xavier/Glorot's
:math:`U(\pm\sqrt{6/(n+m)})` and, for ReLU, He's :math:`N(0, 2/n)`.

This page answers the first questions by experiment and shows the rules as
:mod:`mla_course.init` writes them; the :doc:`next page
<plot_05b_initialisation_deep>` follows them through a deep network.
"""

# %%
# All weights equal: the neurons stay identical
# ---------------------------------------------
# *Que se passe-t-il si tous les poids sont initialisés avec la même valeur ?*
# Every hidden unit of a layer then computes the same function of the input,
# receives the same gradient and gets the same update: they stay copies of
# one another, and a layer of 30 units is worth one. We train a 784-30-30-10
# sigmoid network from constant weights (``init="constant"``, 0.1 everywhere,
# biases 0) and from Xavier's initialisation, over 5 seeds (the batch order,
# and Xavier's draws), then measure, for seed 0, the largest difference
# between two units' incoming weights in layer 1.
import matplotlib.pyplot as plt
import torch

from mla_course import plots
from mla_course.claims import check_order
from mla_course.config import Config
from mla_course.runs import sweep, train_network
from mla_course.settings import generator, pick, seed_everything

plots.use_style()
base = Config(
    hidden=(30, 30),
    lr=0.5,
    epochs=3,
    n_train=pick(full=10_000, quick_value=2000),
    n_test=2000,
)
inits = ("constant", "xavier_uniform")
table = sweep(
    {init: base.replace(init=init) for init in inits}, seeds=range(5)
)
models = {}
for init in inits:
    history, models[init] = train_network(base.replace(init=init))
    w = models[init].linears[0].weight.detach()  # (30 units, 784 inputs)
    spread = (w - w[0]).abs().max().item()  # 0: every unit is unit 0
    print(f"{init:>14}: max |w_j - w_0| in layer 1 = {spread:.2e}")
table

# %%
# From constant weights the units of layer 1 are still exact copies after
# training (the package's tests check it), and the network, one unit wide
# in effect, ends far below the one started from Xavier's draws.
check_order(
    "Xavier's start ends above the constant one",
    table["xavier_uniform"],
    table["constant"],
)

# %%
# The incoming weights of the first 8 units of layer 1, as images, after
# training: one picture repeated, against 8 different detectors.
for init, model in models.items():
    plots.show_images(
        model.linears[0].weight[:8].detach().cpu(),
        [f"unit {j}" for j in range(8)],
        symmetric=True,
        cmap="RdBu_r",
        suptitle=f"Layer 1 after training, init={init!r}",
    )
plt.show()

# %%
# Two neurons with the same inputs and the same initial weights
# -------------------------------------------------------------
# *Que se passe-t-il si les poids de deux neurones connectés à la même entrée
# sont initialisés avec les mêmes valeurs ?* In a randomly initialised
# 784-30-10 network we copy unit 0's incoming weights and bias into unit 1.
# Their gradients are :math:`\partial C / \partial z_j = \sigma'(z_j)
# \sum_k W_{kj} \delta_k`: equal only if their *outgoing* weights
# :math:`W_{kj}` are equal too. We train both variants with plain SGD, the
# loop written out, and follow :math:`\|w_1 - w_0\|`.
import torch.nn.functional as F

from mla_course.data import load_tensors
from mla_course.models import MLP

X, y = load_tensors("mnist", "train", limit=6400)


def twins(copy_outgoing):
    seed_everything(1)
    model = MLP([784, 30, 10], "sigmoid")
    first, second = model.linears
    with torch.no_grad():
        first.weight[1], first.bias[1] = first.weight[0], first.bias[0]
        if copy_outgoing:
            second.weight[:, 1] = second.weight[:, 0]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    gaps = []
    for xb, yb in zip(X.split(64), y.split(64), strict=True):
        gaps.append((first.weight[1] - first.weight[0]).norm().item())
        optimizer.zero_grad()
        F.cross_entropy(model(xb), yb).backward()
        optimizer.step()
    return gaps


symmetric, drift = twins(copy_outgoing=True), twins(copy_outgoing=False)
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(drift, label="same incoming weights only")
ax.plot(symmetric, label="same incoming and outgoing weights")
ax.set(xlabel="step", ylabel=r"$\|w_1 - w_0\|$", title="Do twins stay twins?")
ax.legend()
plt.show()

# %%
# Units that are exact copies in the whole network get exactly the same
# updates and remain copies: *tous les poids évoluent de la même manière*.
# Different outgoing weights are enough to tell them apart, but they start
# from the same detector, a waste of units until they drift apart.
print(f"largest gap of the full twins: {max(symmetric):.1e}")
print(
    f"final gap of the twins with their own outgoing weights: {drift[-1]:.3f}"
)

# %%
# A neuron connected to many neurons: the fan-in
# ----------------------------------------------
# A neuron with :math:`n` inputs computes :math:`z = \sum_{i=1}^n w_i x_i`.
# With independent, centred weights and inputs,
# :math:`\mathrm{Var}(z) = n\, \mathrm{Var}(w)\, \mathbb{E}[x^2]`: the variance
# grows with the fan-in :math:`n`. We measure it for 256 neurons on 5,000
# standard normal input vectors, with :math:`w \sim N(0, 1)`, and with the
# lecture's :math:`U(\pm 1/\sqrt{n})` of variance :math:`1/(3n)`.
from mla_course.init import normal_, uniform_fan_in_

g = generator(0)
fan_ins = [10, 30, 100, 300, 1000, 3000]
var_fixed, var_scaled, saturated = [], [], []
for n in fan_ins:
    x = torch.randn(5000, n, generator=g)  # (examples, inputs)
    z = x @ normal_(torch.empty(256, n), std=1.0, generator=g).T
    var_fixed.append(z.var().item())
    saturated.append(
        100 * (torch.sigmoid(z) - 0.5).abs().gt(0.49).float().mean()
    )
    z = x @ uniform_fan_in_(torch.empty(256, n), generator=g).T
    var_scaled.append(z.var().item())
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
ax1.loglog(fan_ins, var_fixed, "o-", label=r"$w \sim N(0, 1)$")
ax1.loglog(fan_ins, var_scaled, "o-", label=r"$w \sim U(\pm 1/\sqrt{n})$")
ax1.set(xlabel="fan-in $n$", ylabel="Var(z)", title="Pre-activation variance")
ax1.legend()
ax2.semilogx(fan_ins, saturated, "o-")
ax2.set(xlabel="fan-in $n$", ylabel="saturated sigmoids (%)")
ax2.set_title(r"$\sigma(z)$ with $w \sim N(0, 1)$")
plt.show()

# %%
# With a fixed weight variance, :math:`\mathrm{Var}(z)` follows :math:`n`, and
# a sigmoid fed :math:`z` saturates more and more; dividing the weights by
# :math:`\sqrt{n}` keeps :math:`\mathrm{Var}(z)` at :math:`1/3` whatever
# :math:`n`. That is the idea behind every rule below.
print("fan-in    Var(z)/n, N(0, 1)   Var(z), U(±1/√n)   saturated (%)")
for n, v, u, sat in zip(
    fan_ins, var_fixed, var_scaled, saturated, strict=True
):
    print(f"{n:>6}  {v / n:>18.3f}  {u:>17.3f}  {sat:>14.1f}")

# %%
# The rules, from the package
# ---------------------------
# The lecture's first rule, :math:`U(\pm 1/\sqrt{n})`, is PyTorch's default
# for ``nn.Linear``:
from mla_course.init import kaiming_normal_, xavier_uniform_
from mla_course.source import show_source

show_source(uniform_fan_in_)

# %%
# Glorot and Bengio :cite:p:`glorot2010understanding` average the fan-in and
# the fan-out, to keep the variance of the activations on the way forward and
# of the gradients on the way back:
show_source(xavier_uniform_)

# %%
# He et al. :cite:p:`he2015delving` double the variance for ReLU, which zeroes
# half of its inputs:
show_source(kaiming_normal_)

# %%
# Each draw has the variance its formula says, on a 256 x 784 weight matrix
# (:math:`n = 784`, :math:`m = 256`):
w = torch.empty(256, 784)
expected = {
    uniform_fan_in_: 1 / (3 * 784),
    xavier_uniform_: 2 / (784 + 256),
    kaiming_normal_: 2 / 784,
}
for scheme, var in expected.items():
    drawn = scheme(w, generator=g).var().item()
    print(f"{scheme.__name__:>16}: formula {var:.3e}, drawn {drawn:.3e}")

# %%
# What to remember
# ----------------
# * The symmetry must be broken: units with identical incoming *and* outgoing
#   weights stay identical, so draw the weights at random.
# * A neuron's pre-activation has a variance proportional to its fan-in times
#   the variance of its weights: scale the weights by :math:`1/\sqrt{n}`.
# * Xavier's rule also looks at the fan-out; He's doubles the variance for
#   ReLU. The :doc:`next page <plot_05b_initialisation_deep>` shows why.
#
# Further reading
# ---------------
# Glorot and Bengio :cite:p:`glorot2010understanding`, He et al.
# :cite:p:`he2015delving`, section 8.4 of the Deep Learning book
# :cite:p:`goodfellow2016deep`, and the CS231n notes :cite:p:`cs231n`.

# %%
# Exercises
# ---------
#
# **Exercise 1.** Predict first: feed the neuron ReLU outputs,
# ``x = torch.relu(torch.randn(5000, n))``, with He's weights
# (``kaiming_normal_``). What is :math:`\mathrm{Var}(z)`, and would the
# lecture's :math:`U(\pm 1/\sqrt{n})` give the same?

# %% [solution]
# **Solution.** :math:`\mathbb{E}[x^2] = 1/2` for a ReLU of a standard normal,
# so He's :math:`2/n` gives :math:`\mathrm{Var}(z) = n \cdot 2/n \cdot 1/2 = 1`
# at every fan-in, and :math:`U(\pm 1/\sqrt{n})` gives :math:`1/6`.
he, lecture = [], []
for n in fan_ins:
    x = torch.relu(torch.randn(5000, n, generator=g))
    he.append((x @ kaiming_normal_(torch.empty(256, n), generator=g).T).var())
    lecture.append(
        (x @ uniform_fan_in_(torch.empty(256, n), generator=g).T).var()
    )
print("He:", ", ".join(f"{v:.3f}" for v in he))
print("U(±1/sqrt(n)):", ", ".join(f"{v:.3f}" for v in lecture))

# sphinx_gallery_thumbnail_number = 4
