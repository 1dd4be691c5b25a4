r"""
The cross-entropy loss and its gradient
=======================================

The network outputs one score :math:`o_j` per class; the softmax turns the
scores into probabilities :math:`\hat y_j = e^{o_j} / \sum_k e^{o_k}`, and
the cross-entropy compares them with the target :math:`y^*` (one-hot: 1 for
the true class, 0 elsewhere),
:math:`l_{CE}(\hat y, y^*) = -\sum_i y^*_i \log \hat y_i`.

The lecture's exercise asks for the gradient of this loss with respect to
the scores :math:`o`. We derive it, check it numerically, ask what happens
when the outputs are not probabilities, see why the softmax and the log are
computed together, and compare softmax + cross-entropy with the older
sigmoid + squared error on MNIST, each loss with its own tuned step.
"""

# %%
# The exercise: :math:`\partial l / \partial o`
# ---------------------------------------------
# Write :math:`\log \hat y_i = o_i - \log \sum_k e^{o_k}`, so that
# :math:`\partial \log \hat y_i / \partial o_j = \delta_{ij} - \hat y_j` and
#
# .. math::
#
#     \frac{\partial l_{CE}}{\partial o_j}
#     = -\sum_i y^*_i (\delta_{ij} - \hat y_j)
#     = \hat y_j - y^*_j ,
#
# since :math:`\sum_i y^*_i = 1`. The gradient is the *error* of the
# prediction: nothing in it shrinks when a score is large, unlike a
# sigmoid's derivative. In the package it is one line:
from mla_course import losses
from mla_course.source import show_source

show_source(losses.cross_entropy_grad)

# %%
# We compare it with PyTorch's autograd and with central finite
# differences, in float64, on 4 examples of 10 classes (the package's tests
# check the same, ``tests/test_identities_architecture.py``).
import torch
import torch.nn.functional as F

from mla_course.claims import check, check_order
from mla_course.settings import generator

g = generator(0)
logits = 3 * torch.randn(4, 10, generator=g, dtype=torch.float64)
target = torch.randint(10, (4,), generator=g)
ours = losses.cross_entropy_grad(logits, target)  # (batch, classes)

o = logits.clone().requires_grad_()
F.cross_entropy(o, target, reduction="sum").backward()  # autograd

eps = 1e-6
steps = eps * torch.eye(40, dtype=torch.float64).view(-1, 4, 10)
up = [losses.cross_entropy(logits + e, target, "sum") for e in steps]
down = [losses.cross_entropy(logits - e, target, "sum") for e in steps]
numeric = ((torch.stack(up) - torch.stack(down)) / (2 * eps)).view_as(logits)
for name, ref in (("autograd", o.grad), ("finite differences", numeric)):
    print(f"largest difference from {name}: {(ours - ref).abs().max():.1e}")
print(f"largest row sum of the gradient: {ours.sum(1).abs().max():.1e}")

# %%
# What if the outputs are not probabilities?
# ------------------------------------------
# *Que se passe-t-il si les sorties du réseau ne sont pas des probabilités ?*
# Plug the raw scores into :math:`-\sum_i y^*_i \log \hat y_i` and the loss is
# undefined for a negative score and negative for a score above 1; it has no
# minimum, and the other scores do not enter it, so nothing pushes the wrong
# classes down. The softmax makes the outputs positive, sum to one, and
# couples them.
scores = torch.tensor([[2.0, -1.0, 0.5]])  # class 0 is the true one
raw_loss, probs = -torch.log(scores[0, 0]), losses.softmax(scores)
log_second = torch.log(scores[0, 1])
print(f"raw scores: loss {raw_loss:.3f}, log of the 2nd score {log_second}")
print("after a softmax:", ", ".join(f"{p:.3f}" for p in probs[0].tolist()))

# %%
# One example, its true-class score :math:`o_c` growing, the other nine at 0.
# Left, the loss; right, the size of its gradient with respect to
# :math:`o_c`, beside a sigmoid per output with a squared error
# (:func:`~mla_course.losses.sigmoid_l2`), whose gradient carries a factor
# :math:`\sigma'(o_c)`: saturated *on the wrong side* (:math:`o_c \ll 0`),
# the squared error barely learns, while the cross-entropy learns fastest.
import matplotlib.pyplot as plt

from mla_course import plots

plots.use_style()
oc = torch.linspace(-8, 8, 401, dtype=torch.float64)
batch = torch.zeros(len(oc), 10, dtype=torch.float64)
batch[:, 0] = oc  # (401, 10): the true class is 0
true = torch.zeros(len(oc), dtype=torch.long)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
ax1.plot(oc[oc > 0], -torch.log(oc[oc > 0]), label=r"$-\log o_c$ (raw)")
ax1.plot(oc, losses.cross_entropy(batch, true, "none"), label="softmax + CE")
ax1.plot(oc, losses.sigmoid_l2(batch, true, "none"), label="sigmoid + L2")
ax1.set(xlabel="true-class score $o_c$", ylabel="loss", ylim=(-2.5, 8))
ax1.set_title("The loss of one example")
ax1.legend()
ce_grad = losses.cross_entropy_grad(batch, true)[:, 0].abs()
l2_grad = losses.sigmoid_l2_grad(batch, true)[:, 0].abs()
ax2.semilogy(oc, ce_grad, color=plots.OKABE_ITO[1], label="softmax + CE")
ax2.semilogy(oc, l2_grad, color=plots.OKABE_ITO[2], label="sigmoid + L2")
ax2.set(xlabel="true-class score $o_c$", ylabel=r"$|\partial l/\partial o_c|$")
ax2.set_title("The size of its gradient")
ax2.legend()
plt.show()
ratio = (ce_grad[0] / l2_grad[0]).item()
print(f"at o_c = -8 the CE gradient is {ratio:.0f} times the L2 one")

# %%
# Softmax and log together: the stable log-softmax
# ------------------------------------------------
# Computed naively, :math:`\log(e^{o_j} / \sum_k e^{o_k})` fails at large
# scores: in float32 :math:`e^{89}` is already infinite, and a probability
# below about :math:`10^{-45}` rounds to 0, whose log is :math:`-\infty`.
# Subtracting the largest score first is the same function with every
# exponential at most 1. This is why ``F.cross_entropy`` takes the scores.
show_source(losses.log_softmax)

# %%
# We score three classes :math:`(s, 0, -s)` in float32.
s = torch.linspace(1, 120, 239)  # float32, like a network's outputs
three = torch.stack([s, torch.zeros_like(s), -s], dim=1)  # (239, 3)
naive = losses.log_softmax(three, stable=False)
stable = losses.log_softmax(three)
broken = ~torch.isfinite(naive).all(1)
print(f"naive log(softmax) breaks from s = {s[broken][0]:.1f}")
print(f"stable form: every value finite: {torch.isfinite(stable).all()}")
err = (stable - torch.log_softmax(three, 1)).abs().max().item()
print(f"largest difference from torch.log_softmax: {err:.1e}")

# %%
# Softmax + cross-entropy vs sigmoid + squared error on MNIST
# -----------------------------------------------------------
# *[softmax + entropie croisée] donne généralement de meilleurs résultats que
# [sigmoïde + L2]*. The network of Question 1 (784-120-80-10, sigmoid hidden
# units), 2 epochs of SGD on 10,000 images; only the loss on the 10 output
# scores changes (``Config(loss=...)``). The squared error's gradient
# carries :math:`\sigma' \le 1/4`, so a shared step would be unfair: each
# loss gets the step of the same grid that does best on a validation split
# (the last 10,000 training images), over 3 seeds.
from mla_course.config import Config
from mla_course.runs import sweep
from mla_course.settings import pick

lrs = [0.5, 1.0, 2.0, 4.0, 8.0]
base = Config(
    epochs=2,
    n_train=pick(full=10_000, quick_value=4000),
    holdout=10_000,
    evaluate_on="validation",
)
names = {"cross_entropy": "softmax + CE", "mse": "sigmoid + L2"}
grid = {
    f"{names[loss]}, lr={lr:g}": base.replace(loss=loss, lr=lr)
    for loss in names
    for lr in lrs
}
tuning = sweep(grid)
tuning

# %%
# Each loss at its chosen step, trained again over 8 seeds and read once on
# the test set.
from mla_course.tables import Table

chosen = {  # the best step of each loss, on the validation split
    name: Table({k: r for k, r in tuning.items() if k.startswith(name)}).best()
    for name in names.values()
}
final = {
    k: tuning[k].config.replace(evaluate_on="test") for k in chosen.values()
}
test = sweep(final, seeds=range(8))
test

# %%
# The squared error, whose gradient carries :math:`\sigma'`, trains only
# near its best step: at the smallest step of the grid it is still below
# 50 % and far behind the cross-entropy, which is within 5 points of its
# best there. And at their own steps, softmax + cross-entropy still ends
# ahead.
ce_low, l2_low = (tuning[f"{n}, lr={lrs[0]:g}"] for n in names.values())
l2_acc = 100 * l2_low.mean()
check("at lr = 0.5, L2 is below 50 %", l2_acc < 50, measured=f"{l2_acc:.1f} %")
check_order("at lr = 0.5, CE ends above L2", ce_low, l2_low)
gap = 100 * (tuning[chosen["softmax + CE"]].mean() - ce_low.mean())
check(
    "at lr = 0.5, CE is within 5 points of its best",
    gap < 5,
    measured=f"{gap:.1f} points below",
    full_only=True,
)
ce, l2 = (test[chosen[n]] for n in names.values())
check_order("softmax + CE beats sigmoid + L2 at their own steps", ce, l2)

# %%
# The validation accuracy over the grid, and the training loss at each
# chosen step. The two losses are in different units, so each has its own
# axis, in its colour: the cross-entropy on the left, the squared error on
# the right.
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
colours = dict(zip(names.values(), plots.OKABE_ITO[1:3], strict=True))
units = {"softmax + CE": "cross-entropy", "sigmoid + L2": "squared error"}
loss_axes = dict(zip(names.values(), (ax2, ax2.twinx()), strict=True))
for name, colour in colours.items():  # the colours of the figure above
    acc = [100 * tuning[f"{name}, lr={lr:g}"].mean("test_acc") for lr in lrs]
    ax1.semilogx(lrs, acc, marker="o", color=colour, label=name)
    mean, _ = test[chosen[name]].curve("step_loss")
    ax = loss_axes[name]
    ax.plot(*plots.block_average(mean, max(1, len(mean) // 60)), color=colour)
    ax.set_yscale("log")
    ax.set_ylabel(f"{units[name]} ({chosen[name]})", color=colour)
    ax.tick_params(axis="y", which="both", colors=colour)
loss_axes["sigmoid + L2"].spines.right.set_visible(True)
loss_axes["sigmoid + L2"].grid(False)
ax1.set(xlabel="learning rate", ylabel="validation accuracy (%)")
ax1.set_title("Tuning each loss's step on validation")
ax1.set_xticks(lrs, [f"{lr:g}" for lr in lrs], minor=False)
ax1.minorticks_off()
ax2.set(xlabel="step", title="Training at the chosen steps")
ax1.legend()
plt.show()

# %%
# What to remember
# ----------------
# * :math:`\partial l_{CE} / \partial o = \mathrm{softmax}(o) - y^*`: the
#   gradient is the prediction error, with no :math:`\sigma'` factor.
# * The outputs must be probabilities for the cross-entropy to mean
#   anything: the softmax makes them so and couples the classes.
# * Never compute ``log(softmax(o))``: use ``log_softmax`` (or give the
#   scores to ``F.cross_entropy``).
# * Compare losses each at its own tuned step: here the squared error is
#   behind even at its best step, and far behind at a small one.
#
# Further reading
# ---------------
# Section 6.2.2 of the Deep Learning book :cite:p:`goodfellow2016deep` and
# chapter 3 of Nielsen's book :cite:p:`nielsen2015neural` on the learning
# slowdown of the squared error.

# %%
# Exercises
# ---------
#
# **Exercise 1.** Predict first: with label smoothing
# (``y* = 0.9`` on the true class, ``0.1 / 9`` elsewhere), what is the
# gradient of the cross-entropy when the softmax outputs exactly ``y*``?
# And does a true-class score that grows for ever still lower the loss?

# %% [solution]
# **Solution.** The gradient :math:`\hat y - y^*` is 0 at
# :math:`\hat y = y^*`, and it turns positive past it: the loss now has a
# minimum at a finite score, instead of pushing :math:`o_c` to infinity.
smooth = torch.full((1, 10), 0.1 / 9, dtype=torch.float64)
smooth[0, 0] = 0.9
at_target = torch.log(smooth)  # scores whose softmax is exactly y*
grad = losses.cross_entropy_grad(at_target, smooth).abs().max().item()
big = torch.zeros(1, 10, dtype=torch.float64)
big[0, 0] = 20.0
push = losses.cross_entropy_grad(big, smooth)[0, 0].item()
print(f"|gradient| at y*: {grad:.1e}; d l / d o_c at o_c = 20: {push:.3f}")

# sphinx_gallery_thumbnail_number = 1
