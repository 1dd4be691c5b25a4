"""
Penalising the norm of the weights: L2 and L1
=============================================

*Réduire l'erreur de prédiction sur la base d'apprentissage ne suffit pas*:
a network with many more weights than training examples can learn them by
heart. The lecture's first remedy limits its capacity by adding a penalty
to the loss, :math:`\\mathcal{L} = \\sum_i \\ell(f(x^{(i)}; \\theta),
y^{*(i)}) + \\alpha\\,\\Omega(\\theta)`, and asks *quelle norme choisir ?*
We compare the squared L2 norm (weight decay, ridge, Tikhonov) and the L1
norm (LASSO) in the over-fitting setting of this chapter
(:data:`~mla_course.config.OVERFITTING`: the first 500 MNIST training
images, a 784-256-256-10 ReLU network, 40 epochs of SGD with momentum).
Each :math:`\\alpha` is chosen on a validation split; the test set (its
first 2,000 images) is read once, at the end.
"""

# %%
# The penalties as code
# ---------------------
# :func:`~mla_course.penalties.l2_penalty` and
# :func:`~mla_course.penalties.l1_penalty` return a callable of the
# model, a :class:`~mla_course.penalties.NormPenalty`; it sums over the
# weight matrices only (biases add no flexibility):
import statistics

import matplotlib.pyplot as plt
import torch

from mla_course import plots
from mla_course.claims import check, check_order
from mla_course.config import OVERFITTING
from mla_course.models import MLP
from mla_course.penalties import NormPenalty, l1_norm, l1_penalty, l2_penalty
from mla_course.runs import sweep, train_network
from mla_course.settings import pick, seed_everything
from mla_course.source import show_source
from mla_course.tables import Table

plots.use_style()
show_source(NormPenalty.__call__)

# %%
# The L1 norm is one function, used by the plain loop and by the batched
# engine that trains many networks at once (``stacked=True``):
show_source(l1_norm)

# %%
# The factor :math:`\frac12` of L2 makes its gradient :math:`\alpha w`:
# in a gradient step the penalty is exactly PyTorch's
# ``SGD(weight_decay=alpha)`` on the weights, which the optimisers of
# :mod:`mla_course.optim` also offer. L1 adds :math:`\alpha\,
# \mathrm{sign}(w)`: a constant pull towards 0, whatever the size of
# :math:`w`. Autograd agrees (``tests/`` checks it); the largest gaps:
seed_everything(0)
net = MLP((784, 32, 10), "relu")
gaps = {}
for name, penalty, expected in (
    ("L2", l2_penalty(alpha=0.01), lambda w: 0.01 * w),
    ("L1", l1_penalty(alpha=0.01), lambda w: 0.01 * w.sign()),
):
    net.zero_grad()
    penalty(net).backward()
    gaps[name] = max(
        (m.weight.grad - expected(m.weight)).abs().max().item()
        for m in net.linears
    )
print(", ".join(f"{k}: {v:.1e}" for k, v in gaps.items()))

# %%
# Choosing alpha on a validation split
# ------------------------------------
# Three values of :math:`\alpha` per penalty, a factor 10 apart, 3 seeds
# each, measured on the last 2,000 training images, which no network
# trains on. The L2 runs use the optimiser's ``weight_decay`` (the same
# update as above, here on the biases too), the L1 runs add
# :math:`\alpha \sum |w|` to the loss. We choose the :math:`\alpha` with
# the lowest validation loss. Too large an L2 penalty under-fits: its
# training loss ends above that of the chosen value.
base = OVERFITTING.replace(epochs=pick(full=OVERFITTING.epochs, quick_value=5))
grid = {"L2": (1e-3, 1e-2, 1e-1), "L1": (3e-5, 3e-4, 3e-3)}
field = {"L2": "weight_decay", "L1": "l1"}
configs = {"no penalty": base} | {
    f"{k}, alpha={a:g}": base.replace(**{field[k]: a})
    for k, alphas in grid.items()
    for a in alphas
}
tune = {"holdout": 2000, "evaluate_on": "validation"}
val = sweep({k: c.replace(**tune) for k, c in configs.items()})
by_penalty = {k: Table({n: r for n, r in val.items() if k in n}) for k in grid}
chosen = {k: t.best("test_loss") for k, t in by_penalty.items()}  # on val
print("chosen on the validation split:", chosen)
too_big = f"L2, alpha={max(grid['L2']):g}"
claim = "too large an L2 penalty under-fits: a higher training loss"
fits = val[too_big], val[chosen["L2"]]
check_order(claim, *fits, metric="train_loss", full_only=True)
val

# %%
# Train with and without a penalty
# --------------------------------
# The chosen values, and the network without a penalty, on the test set.
# The training loss reaches zero without a penalty, and the test loss,
# after a few epochs, climbs back up: the network becomes ever more
# confident on the examples it gets wrong. Both penalties end with a
# lower test loss.
shown = ["no penalty", *chosen.values()]
table = sweep({k: configs[k] for k in shown})
no_pen = table["no penalty"]
curve, _ = no_pen.curve("test_loss")
rise = (curve[-1] - curve.min()).item()
check(
    "without a penalty the training loss ends near zero (< 0.01)",
    no_pen.mean("train_loss") < 0.01,
    measured=f"train loss {no_pen.mean('train_loss'):.4f}",
    full_only=True,
)
check(
    "without a penalty the test loss climbs back after its minimum",
    rise > 0.05,
    measured=f"last epoch minus minimum of the mean curve: {rise:.3f}",
    full_only=True,
)
for k in grid:
    claim = f"{k} ends with a lower test loss than no penalty"
    low = table[chosen[k]]
    check_order(claim, no_pen, low, metric="test_loss", full_only=True)
axes = plots.plot_table_curves(table, shown)
axes[2].set_ylim(bottom=60)
plt.show()
table

# %%
# In relative terms the accuracy moves much less than the loss: each
# penalty cuts the test loss by more than a quarter, and moves the test
# accuracy by less than a tenth of that share (read the gains in the table
# above, with their spread over seeds).
for k in grid:
    acc = table[chosen[k]].mean() / no_pen.mean() - 1
    loss = 1 - table[chosen[k]].mean("test_loss") / no_pen.mean("test_loss")
    claim = f"{k}: loss down over 25 %, accuracy moved under a tenth of that"
    measured = f"loss {-loss:+.0%}, accuracy {acc:+.1%} (relative)"
    check(
        claim,
        loss > 0.25 and abs(acc) < loss / 10,
        measured=measured,
        full_only=True,
    )

# %%
# Validation is not test
# ----------------------
# The networks trained without a penalty for the validation split above
# and for the test set here are the same networks (same 500 images, same
# seeds), read on two splits: they score much higher on the validation
# split. The validation images come from the end of MNIST's training set,
# written by the same pool of writers as the 500 training images; the test
# set's writers are others :cite:p:`lecun1998gradient`. A choice made on
# validation carries over; its score does not.
claim = "the same networks score higher on validation than on the test set"
check_order(claim, val["no penalty"], no_pen)

# %%
# What the penalties do to the weights
# ------------------------------------
# :func:`~mla_course.runs.train_network` gives back the very networks of
# the table above (the figure: seed 0). L2 shrinks every weight in
# proportion to its size: the distribution narrows but stays smooth. L1
# pulls each weight towards 0 by the same amount whatever its size:
# *favorise les solutions parcimonieuses*, with many weights near zero.
# (With plain gradient steps they hover around 0 rather than land on it;
# a proximal step, soft thresholding, would make them exactly 0.)
small, share, rms = 1e-3, {}, {}
fig, ax = plt.subplots(figsize=(7, 3.8))
for k in shown:
    nets = [train_network(configs[k], seed)[1] for seed in table[k].seeds]
    ws = [
        torch.cat([m.weight.detach().flatten().cpu() for m in n.linears])
        for n in nets
    ]
    share[k] = [(w.abs() < small).float().mean().item() for w in ws]
    rms[k] = [w.pow(2).mean().sqrt().item() for w in ws]
    ax.hist(ws[0], bins=200, range=(-0.2, 0.2), histtype="step", label=k)
    near, size = statistics.mean(share[k]), statistics.mean(rms[k])
    print(f"{k:>18}: {near:6.1%} of |w| < {small:g}, rms weight {size:.4f}")
ax.set(yscale="log", xlabel="weight value", ylabel="number of weights")
ax.set_title(f"The {len(ws[0]):,} weights after training, seed 0 (|w| < 0.2)")
ax.legend()
plt.show()
l1, l2, none = chosen["L1"], chosen["L2"], "no penalty"
claim = "L1 leaves more weights near 0 than no penalty"
check_order(claim, share[l1], share[none], metric="share", paired=True)
claim = "L2 makes the weights smaller: a lower root-mean-square weight"
check_order(claim, rms[none], rms[l2], metric="rms", paired=True)

# %%
# What to remember
# ----------------
# * A norm penalty trades training loss for smaller weights; on 500
#   images it lowers the test loss far more than it moves the accuracy.
# * L2 (weight decay) shrinks all weights; with SGD it is the optimiser's
#   ``weight_decay``. L1 drives many weights to (nearly) zero.
# * The validation split scores higher than the test set: choose on it,
#   but report the test set.
# * :math:`\alpha` is a hyper-parameter, chosen on a validation split:
#   too large (L2 here), the network under-fits.
#
# Further reading
# ---------------
# Chapter 7 of :cite:p:`goodfellow2016deep`, weight decay in neural
# networks :cite:p:`krogh1992simple`, and the LASSO
# :cite:p:`tibshirani1996regression`.
#
# Exercises
# ---------
#
# **Exercise 1.** Sparse networks can be pruned. Predict first: set to
# exactly 0 the same share of smallest weights, the share that L1 left
# below 0.001, in the network without penalty and in the L1 network.
# Which loses more test accuracy? The function below prunes a network.
from mla_course.runs import load_data
from mla_course.train import predict

_, (X_test, y_test) = load_data(base)
share_l1 = statistics.mean(share[chosen["L1"]])


@torch.no_grad()
def accuracy_lost(model, share):
    """Test accuracy lost when the ``share`` smallest weights are set to 0."""

    def accuracy():
        right = predict(model, X_test).argmax(1) == y_test
        return right.float().mean().item()

    before = accuracy()
    w = torch.cat([m.weight.flatten() for m in model.linears]).abs()
    cut = w.kthvalue(max(1, int(share * len(w)))).values
    for m in model.linears:
        m.weight[m.weight.abs() <= cut] = 0.0
    return before - accuracy()


# %% [solution]
# **Solution.** The network without penalty loses more, in every seed: it
# spreads its work over all weights, while the weights that L1 had pushed
# towards 0 carried little.
lost = {
    k: [
        accuracy_lost(train_network(configs[k], seed)[1], share_l1)
        for seed in table[k].seeds
    ]
    for k in ("no penalty", chosen["L1"])
}
print({k: [f"{v:.1%}" for v in values] for k, values in lost.items()})
pairs = zip(lost["no penalty"], lost[chosen["L1"]], strict=True)
check(
    f"pruning {share_l1:.0%} of the weights costs the unpenalised network "
    "more accuracy, in each of the 3 seeds",
    all(a > b for a, b in pairs),
    measured=", ".join(
        f"{a:.1%} vs {b:.1%}" for a, b in zip(*lost.values(), strict=True)
    ),
    full_only=True,
)

# sphinx_gallery_thumbnail_number = 1
