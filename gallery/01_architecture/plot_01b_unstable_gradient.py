r"""
The unstable gradient: a product of factors
===========================================

The :doc:`previous page <plot_01_gradient_dispersion>` measured the speed of
learning :math:`\|\partial C / \partial b^l\|` of each layer of a deep
sigmoid network: it shrinks towards the input. This page asks why, with the
chain rule, then tries the lecture's suggestion, *est-ce qu'il suffit
d'augmenter les valeurs des w ?*, and ends with ReLU units. As on the
previous page, we use Nielsen's 4-hidden-layer network
(:math:`N(0, 1/n_{in})` weights, :math:`N(0, 1)` biases, sigmoid outputs
with the cross-entropy, raw pixels) :cite:p:`nielsen2015neural`, at
initialisation, on the first 1,000 training images, over 10 initialisations.
"""

# %%
# Why: a product of small factors
# -------------------------------
# For a chain of one sigmoid neuron per layer, :math:`a_l = \sigma(z_l)`,
# :math:`z_l = w_l a_{l-1} + b_l`, the chain rule gives the lecture's formula
#
# .. math::
#
#     \frac{\partial C}{\partial b_1} = \sigma'(z_1)\, w_2 \sigma'(z_2)\,
#     w_3 \sigma'(z_3)\, w_4 \sigma'(z_4)\, \frac{\partial C}{\partial a_4} .
#
# Since :math:`\sigma' \le 1/4`, each factor :math:`|w_j \sigma'(z_j)|` is
# below :math:`1/4` as long as :math:`|w_j| < 1`. In a network the same
# happens with matrices, :math:`\delta^l = \sigma'(z^l) \odot (W^{l+1})^T
# \delta^{l+1}`. We measure both factors in Nielsen's network.
import itertools

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from mla_course import diagnostics, plots
from mla_course.claims import check, check_order
from mla_course.data import load_tensors
from mla_course.init import init_
from mla_course.models import MLP
from mla_course.settings import seed_everything

plots.use_style()
raw, y = load_tensors("mnist", "train", limit=1000, normalize=False)
target = F.one_hot(y, 10).float()
seeds = range(10)


def cost(scores, y):  # Nielsen's: a sigmoid and a cross-entropy per output
    loss = F.binary_cross_entropy_with_logits(scores, target, reduction="sum")
    return loss / len(y)


def network(seed, scale=1.0, activation="sigmoid"):
    """Nielsen's 4-hidden-layer network, weights multiplied by ``scale``."""
    seed_everything(seed)
    model = MLP([784, 30, 30, 30, 30, 10], activation)
    init_(model, "kaiming_normal", nonlinearity="linear")  # N(0, 1/n_in)
    for layer in model.linears:
        layer.weight.data *= scale
        torch.nn.init.normal_(layer.bias)  # N(0, 1)
    return model


# %%
# The mean :math:`\sigma'(z^l)` of each hidden layer, and the ratio of the
# gradient norms of consecutive layers, mean over the 10 initialisations:


def factors(seed):
    traces = diagnostics.trace(network(seed), raw, y, cost)[:-1]  # hidden
    slopes = [(t.a * (1 - t.a)).mean().item() for t in traces]
    pairs = itertools.pairwise(traces)
    return slopes, [
        (a.z_grad.norm() / b.z_grad.norm()).item() for a, b in pairs
    ]


both = [factors(seed) for seed in seeds]
sig_prime = np.mean([s for s, _ in both], axis=0)  # (4,)
ratios = np.array([r for _, r in both])  # (seeds, 3)
ratio = ratios.mean(0)
fig, ax = plt.subplots(figsize=(6, 3.4))
ax.bar(np.arange(1, 5) - 0.2, sig_prime, 0.4, label=r"mean $\sigma'(z^l)$")
ax.bar(
    np.arange(1, 4) + 0.2, ratio, 0.4, label=r"$\|\delta^l\|/\|\delta^{l+1}\|$"
)
ax.axhline(0.25, color="gray", ls="--", lw=1)
ax.set(xlabel="hidden layer $l$", xticks=[1, 2, 3, 4], ylim=(0, 0.35))
ax.set_title("The factors of the product")
ax.legend(ncols=2, loc="upper center")
plt.show()

# %%
# Every mean :math:`\sigma'` is below 1/4, as it must be, and in every
# initialisation every layer divides :math:`\|\delta\|` by more than 2: the
# gradient of the first layer is the product of these factors.
print("mean sigma'(z) per layer:", ", ".join(f"{v:.3f}" for v in sig_prime))
check(
    "every layer divides ||delta|| by more than 2, in every init",
    ratios.max() < 0.5,
    measured=f"largest ratio {ratios.max():.2f}",
)

# %%
# Is it enough to increase the weights?
# -------------------------------------
# We multiply every weight by :math:`c` and measure, over 10
# initialisations, the share of saturated sigmoids (outputs outside
# :math:`[0.01, 0.99]`, where :math:`\sigma' < 0.01`) and the speed of layer
# 4 over that of layer 1.
scales = [1, 2, 4, 8, 16, 32, 64]
saturated, gap = [], []
for c in scales:
    stats = [
        diagnostics.layer_stats(network(s, c), raw, y, cost) for s in seeds
    ]
    saturated.append(100 * np.mean([st["saturated"][:-1] for st in stats]))
    speed = np.array([st["bias_grad_norm"] for st in stats])  # (seeds, layers)
    gap.append(np.mean(speed[:, 3] / speed[:, 0]))
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.4))
ax1.plot(scales, saturated, marker="o")
ax1.set(ylabel="saturated units (%)", title="Near-binary activations")
ax2.plot(scales, gap, marker="o")
ax2.axhline(1, color="gray", ls="--", lw=1)
ax2.set(ylabel="speed of layer 4 / layer 1", yscale="log", title="The gap")
for ax in (ax1, ax2):
    ax.set(xscale="log", xlabel="weight scale $c$")
    ax.set_xticks(scales, [str(c) for c in scales])
plt.show()

# %%
# Larger weights close the gap between the layers only by saturating the
# units, and at the largest scale the order flips: layer 1 learns faster
# than layer 4. The gradient is *unstable*: it vanishes, or it explodes.
check(
    "the gap narrows more than ten-fold from c = 1 to c = 8",
    gap[0] > 10 * gap[3],
    measured=f"speed 4 / speed 1: {gap[0]:.0f} at c = 1, {gap[3]:.1f} at 8",
)
check(
    "at c = 64 layer 1 learns faster than layer 4",
    gap[-1] < 1,
    measured=f"speed 4 / speed 1 = {gap[-1]:.2f}",
)
check(
    "from c = 16 on, over half of the units are saturated",
    min(saturated[4:]) > 50,
    measured=", ".join(f"{v:.0f}" for v in saturated[4:]) + " %",
)

# %%
# An exploding gradient
# ---------------------
# Nielsen's construction isolates the explosion: with :math:`w_j = 100` and
# biases chosen so that every :math:`z_j = 0`, where :math:`\sigma' = 1/4`,
# each factor is :math:`w_j \sigma'(z_j) = 25` by construction. We compute
# :math:`\partial C / \partial b_l` by autograd on a chain of 6 neurons with
# :math:`C = a_6`, in float64, and print the ratios.
w = torch.full((6,), 100.0, dtype=torch.float64)
b = torch.zeros(6, dtype=torch.float64, requires_grad=True)
a = torch.tensor(1.0, dtype=torch.float64)
for j in range(6):
    a = torch.sigmoid(w[j] * a + b[j] - w[j] * a.detach())  # z_j = b_j = 0
a.backward()
grow = (b.grad[:-1] / b.grad[1:]).tolist()
print("dC/db_l, l = 1..6:", ", ".join(f"{g:.3g}" for g in b.grad.tolist()))
print("ratios of consecutive layers:", ", ".join(f"{r:.6g}" for r in grow))

# %%
# With ReLU
# ---------
# :math:`\mathrm{ReLU}'(z) = 1` for an active unit: no factor 1/4. What
# remains is the weights: PyTorch's default variance :math:`1/(3n)` still
# shrinks the gradient (layer 4 over twice as fast as layer 1), He's
# :math:`2/n` (``kaiming_normal``, the :doc:`initialisation page
# <plot_05_initialisation>`) keeps the layers at comparable speeds (within
# a factor of 2). PyTorch's defaults otherwise (softmax cross-entropy).
normalised, _ = load_tensors("mnist", "train", limit=1000)
relu = {}
for init in ("default", "kaiming_normal"):
    relu[init] = []
    for seed in seeds:
        seed_everything(seed)
        model = init_(MLP([784, 30, 30, 30, 30, 10], "relu"), init)
        g = diagnostics.learning_speed(model, normalised, y)
        relu[init].append(float(g[3] / g[0]))
    print(
        f"ReLU, {init}: speed of layer 4 / layer 1 = {np.mean(relu[init]):.1f}"
    )
default, he = np.mean(relu["default"]), np.mean(relu["kaiming_normal"])
check(
    "default init: layer 4 over twice as fast as layer 1",
    default > 2,
    measured=f"{default:.1f} times",
)
check(
    "He's init: layer 4 within a factor 2 of layer 1",
    0.5 < he < 2,
    measured=f"{he:.2f} times",
)
check_order(
    "He's init brings the ReLU layers' speeds closer",
    relu["default"],
    relu["kaiming_normal"],
    metric="gap",
    paired=True,
)

# %%
# What to remember
# ----------------
# * Back-propagation multiplies the gradient by :math:`w\,\sigma'(z)` at each
#   layer, and :math:`\sigma' \le 1/4`: the first layers learn slowest.
# * Larger weights are no cure: they saturate the sigmoids, or make the
#   product explode. The gradient is *unstable*.
# * ReLU removes the 1/4; an initialisation matched to the activation keeps
#   the layers' speeds comparable.
#
# Further reading
# ---------------
# Chapter 5 of Nielsen's book :cite:p:`nielsen2015neural`, Karpathy's
# *Yes you should understand backprop* :cite:p:`karpathy2016backprop`, and
# Glorot and Bengio :cite:p:`glorot2010understanding`.

# %%
# Exercises
# ---------
#
# **Exercise 1.** Predict first: give the ReLU network of the last cell
# weights that are far too large, :math:`N(0, 1)`
# (``init_(model, "normal", std=1.0)``). Does layer 1 then learn slower or
# faster than layer 4?

# %% [solution]
# **Solution.** Faster: each ReLU layer now multiplies the gradient by about
# :math:`\sqrt{n/2} \approx 4` (variance :math:`n \cdot 1 / 2` instead of 1),
# so it *grows* towards the input: the gradient explodes.
large = []
for seed in seeds:
    seed_everything(seed)
    model = init_(MLP([784, 30, 30, 30, 30, 10], "relu"), "normal", std=1.0)
    g = diagnostics.learning_speed(model, normalised, y)
    large.append(float(g[3] / g[0]))
print(f"speed of layer 4 / layer 1: {np.median(large):.2g} (median)")
check(
    "with N(0, 1) weights layer 1 learns faster than layer 4 in every init",
    max(large) < 1,
    measured=f"largest ratio {max(large):.2g}",
)

# sphinx_gallery_thumbnail_number = 2
