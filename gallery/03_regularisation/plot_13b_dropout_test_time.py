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
"""

import functools

import matplotlib.pyplot as plt
import torch

from mla_course import plots
from mla_course.claims import check
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
# that is exact for a linear network. A :class:`~mla_course.config.Config`
# names no dropout rule, so we build the two networks with the package's
# layer and train them with the plain loop, with the optimiser of the
# setting (momentum 0.9, step 0.05).
p = 0.5
(X, y), (X_test, y_test) = load_data(base)
nets = {}
for inverted in (True, False):
    seed_everything(0)
    layer = functools.partial(Dropout, inverted=inverted)
    net = MLP(base.sizes, "relu", dropout=p, dropout_layer=layer).to(device)
    opt = make_optimizer(base.optimizer, net.parameters(), base.lr)
    fit(
        net,
        opt,
        (X, y),
        (X_test, y_test),
        epochs=base.epochs,
        seed=0,
    )
    nets[inverted] = net

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


rules = {
    "inverted dropout, one pass": one_pass(nets[True]),
    "original rule, x (1 - p) at test": one_pass(nets[False]),
}
forgot = nets[False]  # forget the test-time scaling of the original rule:
for m in forgot.modules():  # activations become 1 / (1 - p) too large
    if isinstance(m, Dropout):
        m.inverted = True  # in evaluation an inverted layer is the identity
rules["original rule, scaling forgotten"] = one_pass(forgot)
seed_everything(0)
n_samples = pick(full=[1, 3, 10, 30, 100], quick_value=[1, 10])
mc = {n: scores(mc_dropout_predict(nets[True], X_test, n)) for n in n_samples}
rules |= {f"Monte-Carlo, {n} masks": v for n, v in mc.items()}
for rule, (acc, loss) in rules.items():
    print(f"{rule:>34}: test accuracy {acc:.2%}, test loss {loss:.3f}")

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
one, many = rules["inverted dropout, one pass"], mc[max(n_samples)]
fgt, orig = (
    rules["original rule, scaling forgotten"],
    rules["original rule, x (1 - p) at test"],
)
check(
    "one mask is more than 2 points below the one-pass rule",
    one[0] - mc[1][0] > 0.02,
    measured=f"{mc[1][0]:.2%} vs {one[0]:.2%}",
)
check(
    f"{max(n_samples)} masks match the one-pass accuracy (within 1 pt)",
    abs(many[0] - one[0]) < 0.01,
    measured=f"{many[0]:.2%} vs {one[0]:.2%}",
    full_only=True,
)
check(
    "the Monte-Carlo average has a lower test loss than one pass",
    many[1] < one[1],
    measured=f"{many[1]:.3f} vs {one[1]:.3f}",
    full_only=True,
)
check(
    "forgetting the scaling moves the accuracy by less than 1 point "
    "but raises the loss",
    abs(fgt[0] - orig[0]) < 0.01 and fgt[1] > orig[1],
    measured=f"{fgt[0]:.2%} vs {orig[0]:.2%}, loss {fgt[1]:.3f} vs "
    f"{orig[1]:.3f}",
)

# %%
# The Monte-Carlo estimate against the number of masks it averages:
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for ax, i, what in zip(
    axes, (0, 1), ("test accuracy (%)", "test loss"), strict=True
):
    ax.plot(
        n_samples,
        [mc[n][i] * (100 if i == 0 else 1) for n in n_samples],
        marker="o",
        label="Monte-Carlo average",
    )
    ax.axhline(
        one[i] * (100 if i == 0 else 1),
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
# **Solution.** Where the masks disagree, the network is wrong at least
# twice as often: the spread of the Monte-Carlo samples is a useful
# uncertainty, which a single pass does not give.
seed_everything(1)
probs = probabilities_per_mask(nets[True], pick(full=30, quick_value=10))
pred = probs.mean(0).argmax(1)  # (n,)
spread = probs[:, torch.arange(len(pred)), pred].std(0)  # (n,)
unsure = spread >= spread.quantile(0.9)
wrong = pred != y_test
err_unsure = wrong[unsure].float().mean().item()
err_rest = wrong[~unsure].float().mean().item()
print(
    f"error rate: {err_unsure:.1%} on the most uncertain tenth, "
    f"{err_rest:.1%} on the rest"
)
check(
    "the network errs at least twice as often where the masks disagree",
    err_unsure > 2 * err_rest,
    measured=f"{err_unsure:.1%} vs {err_rest:.1%}",
    full_only=True,
)

# sphinx_gallery_thumbnail_number = 1
