"""
Dropout at test time
====================

*Et en test ?* With dropout, the trained network is a random function
:math:`\\hat y = f(x, z; \\theta)` of the mask :math:`z` of deactivated
units. The lecture wants the average over the masks,
:math:`\\hat y = \\mathbb{E}_z[f(x, z; \\theta)] = \\int p(z) f(x, z;
\\theta)\\,dz`, not one random draw, and gives two shortcuts: multiply the
activations by the keep probability at test time, or scale them by its
inverse in training (*dropout inversé*, the usual rule). We compare them
with the Monte-Carlo average in the over-fitting setting of the previous
page, with :math:`p = 0.5`.

The lecture's symbols, the book's names and torch's arguments are set side by
side on the :ref:`notation` page; French terms are in the :ref:`glossary`.
"""

import functools
import statistics

import matplotlib.pyplot as plt
import torch

from mla_course import plots
from mla_course.claims import check, check_equivalent, check_order
from mla_course.config import OVERFITTING
from mla_course.layers import Dropout, mc_dropout_predict
from mla_course.models import MLP
from mla_course.optim import make_optimizer
from mla_course.runs import load_data
from mla_course.settings import get_device, pick, seed_everything
from mla_course.source import show_source
from mla_course.train import fit, predict

plots.use_style()
device = get_device()
base = OVERFITTING.replace(epochs=pick(full=OVERFITTING.epochs, quick_value=5))

# %%
# Three ways to the average
# -------------------------
# 1. Monte-Carlo: average the predicted probabilities over many random
#    masks (:func:`~mla_course.layers.mc_dropout_predict`,
#    :cite:p:`gal2016dropout`);
# 2. the original rule: no scaling in training, multiply the activations
#    by the keep probability :math:`1-p` at test time
#    (``Dropout(p, inverted=False)``);
# 3. inverted dropout: scale by :math:`1/(1-p)` in training, nothing at
#    test time.
#
# Rules 2 and 3 replace the average by a single pass, an approximation
# that is exact for a linear network (``tests/`` checks it). A
# :class:`~mla_course.config.Config` names no dropout rule, so we build the
# two networks with the package's layer and train them with the plain
# loop, with the optimiser of the setting (momentum 0.9, step 0.05), over
# 3 seeds.
p = 0.5
(X, y), (X_test, y_test) = load_data(base)
seeds = (0, 1, 2)


def train(inverted, seed):
    """A network with dropout, inverted or not, trained like the setting."""
    seed_everything(seed)
    layer = functools.partial(Dropout, inverted=inverted)
    net = MLP(base.sizes, "relu", dropout=p, dropout_layer=layer).to(device)
    opt = make_optimizer(base.optimizer, net.parameters(), base.lr)
    fit(net, opt, (X, y), (X_test, y_test), epochs=base.epochs, seed=seed)
    return net


nets = {
    inverted: [train(inverted, s) for s in seeds] for inverted in (True, False)
}

# %%
# Each rule's test accuracy and loss, the loss computed on the predicted
# probabilities; and what one forgets when one forgets the scaling:


def scores(probs):
    """Test accuracy and cross-entropy of probabilities ``(n, 10)``."""
    nll = -torch.log(
        probs[torch.arange(len(y_test)), y_test].clamp_min(1e-12)
    ).mean()
    return (probs.argmax(1) == y_test).float().mean().item(), nll.item()


def one_pass(net):
    return scores(torch.softmax(predict(net, X_test), 1))


rules = {  # rule: [(accuracy, loss) per seed]
    "inverted dropout, one pass": [one_pass(n) for n in nets[True]],
    "original rule, x (1 - p) at test": [one_pass(n) for n in nets[False]],
}
for m in (m for n in nets[False] for m in n.modules()):  # forget the scaling
    if isinstance(m, Dropout):  # of the original rule: activations become
        m.inverted = True  # 1 / (1 - p) too large (inverted: identity in eval)
rules["original rule, scaling forgotten"] = [one_pass(n) for n in nets[False]]
seed_everything(0)
n_samples = pick(full=[1, 3, 10, 30, 100], quick_value=[1, 10])
mc = {
    n: [scores(mc_dropout_predict(net, X_test, n)) for net in nets[True]]
    for n in n_samples
}
rules |= {f"Monte-Carlo, {n} masks": v for n, v in mc.items()}
acc = {k: [a for a, _ in v] for k, v in rules.items()}  # per seed
loss = {k: [c for _, c in v] for k, v in rules.items()}
for rule in rules:
    a, c = statistics.mean(acc[rule]), statistics.mean(loss[rule])
    print(f"{rule:>34}: test accuracy {a:.2%}, test loss {c:.3f}")

# %%
# Monte-Carlo averaging is itself a function of the package:
show_source(mc_dropout_predict)

# %%
# On the inverted network, one mask is a poor prediction and enough masks
# match the accuracy of the one-pass rule, which costs a single forward
# pass: this is why inverted dropout is the default. The loss tells more:
# the single pass averages the *scores* (exact for a linear network), the
# Monte-Carlo estimate averages the *probabilities*, the lecture's
# :math:`\mathbb{E}_z[f(x, z; \theta)]`, and it is better calibrated.
#
# Forgetting the scaling makes every activation :math:`1/(1-p)` times too
# large: in a ReLU network the ranking of the classes moves little but the
# probabilities become over-confident, which the loss shows.
one, many = (
    "inverted dropout, one pass",
    f"Monte-Carlo, {max(n_samples)} masks",
)
fgt, orig = (
    "original rule, scaling forgotten",
    "original rule, x (1 - p) at test",
)
one_mask = "Monte-Carlo, 1 masks"
gap = min(a - b for a, b in zip(acc[one], acc[one_mask], strict=True))
claim = "in every seed one mask is more than 2 points below the one-pass rule"
check(claim, gap > 0.02, measured=f"smallest gap {gap:.2%}")
claim = f"{max(n_samples)} masks match the one-pass accuracy (within 2 points)"
check_equivalent(
    claim, acc[many], acc[one], margin=2, paired=True, full_only=True
)
claim = "the Monte-Carlo average has a lower test loss than one pass"
check_order(
    claim,
    loss[one],
    loss[many],
    metric="test_loss",
    paired=True,
    full_only=True,
)
claim = "forgetting the scaling raises the test loss"
scaled = loss[fgt], loss[orig]
check_order(claim, *scaled, metric="test_loss", paired=True, full_only=True)
claim = "forgetting the scaling moves the accuracy by less than 3 points"
check_equivalent(
    claim, acc[fgt], acc[orig], margin=3, paired=True, full_only=True
)

# %%
# The Monte-Carlo estimate against the number of masks it averages:
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for ax, i, what in zip(
    axes, (0, 1), ("test accuracy (%)", "test loss"), strict=True
):
    ax.plot(
        n_samples,
        [
            statistics.mean(v[i] for v in mc[n]) * (100 if i == 0 else 1)
            for n in n_samples
        ],
        marker="o",
        label="Monte-Carlo average",
    )
    ax.axhline(
        statistics.mean((acc, loss)[i][one]) * (100 if i == 0 else 1),
        color=plots.OKABE_ITO[1],
        ls="--",
        label="inverted dropout, one pass",
    )
    ax.set(
        xscale="log",
        xlabel="number of random masks averaged",
        ylabel=what,
        title=f"{what.split(' (')[0].capitalize()}, trained with p = {p}",
    )
    ax.legend()
plt.show()

# %%
# What to remember
# ----------------
# * At test time use the expected network :math:`\mathbb{E}_z[f(x, z;
#   \theta)]`, not one random mask.
# * Inverted dropout (scale during training) gives an approximation in one
#   pass, the usual choice; the original rule must not forget its
#   :math:`1-p` at test time.
# * Monte-Carlo averaging gives it by sampling, better calibrated here,
#   with an uncertainty estimate as a bonus.
#
# Further reading
# ---------------
# :cite:p:`srivastava2014dropout`, Monte-Carlo dropout
# :cite:p:`gal2016dropout`, and chapter 7.12 of
# :cite:p:`goodfellow2016deep`.
#
# Exercises
# ---------
#
# **Exercise 1.** Monte-Carlo dropout also says how sure the network is:
# predict first. Take the tenth of the test images on which the random
# masks disagree most (the largest standard deviation, over the masks, of
# the probability of the predicted class). Is the network wrong there
# more often than on the other images, and by how much? The function
# below gives the probabilities under each mask.


@torch.no_grad()
def probabilities_per_mask(net, n_masks):
    """Class probabilities under ``n_masks`` random masks, (masks, n, 10)."""
    net.eval()
    for m in net.modules():
        if isinstance(m, Dropout):
            m.train()  # masks on, as in mc_dropout_predict
    out = torch.stack([torch.softmax(net(X_test), 1) for _ in range(n_masks)])
    net.eval()
    return out


# %% [solution]
# **Solution.** Where the masks disagree, the network is wrong more than
# twice as often, in every seed: the spread of the Monte-Carlo samples is
# a useful uncertainty, which a single pass does not give.
seed_everything(1)
ratio = []
for net in nets[True]:
    probs = probabilities_per_mask(net, pick(full=30, quick_value=10))
    pred = probs.mean(0).argmax(1)  # (n,)
    spread = probs[:, torch.arange(len(pred)), pred].std(0)  # (n,)
    unsure, wrong = spread >= spread.quantile(0.9), (pred != y_test).float()
    ratio.append((wrong[unsure].mean() / wrong[~unsure].mean()).item())
print(
    "error rate, most uncertain tenth / the rest:", [f"{r:.1f}" for r in ratio]
)
check(
    "in every seed the network errs over twice as often where masks disagree",
    min(ratio) > 2,
    measured=", ".join(f"{r:.1f} times" for r in ratio),
    full_only=True,
)

# sphinx_gallery_thumbnail_number = 1
