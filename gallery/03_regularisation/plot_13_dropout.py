"""
Dropout
=======

*A chaque mise à jour des poids, un ensemble de neurones sont désactivés
aléatoirement*: each hidden unit is zeroed with probability :math:`p`, a new
random mask at every step :cite:p:`srivastava2014dropout`. The lecture reads it
as an ensemble of networks that share their weights, which must not rely on
any single unit. It asks what to do at test time (*Et en test ?*) and warns
that training takes longer.

We use the over-fitting setting of the previous page (500 training images, a
784-256-256-10 ReLU network, SGD with momentum, test accuracy on the first
2,000 test images), train with dropout rates 0, 0.2 and 0.5 on the hidden
units, then compare the three test-time rules of the lecture numerically.
"""

# %%
# The layer
# ---------
# :class:`~mla_course.layers.Dropout` draws a mask of zeros and ones. In its
# *inverted* form, the usual one and PyTorch's, the kept units are multiplied
# by :math:`1/(1-p)` during training so that each unit keeps its expected
# value, and the layer does nothing at test time.
import torch

from mla_course import plots
from mla_course.layers import Dropout
from mla_course.utils import get_device, pick

plots.use_style()
device = get_device()
layer = Dropout(0.5, generator=torch.Generator().manual_seed(0))
h = torch.ones(100_000)  # (units,)
out = layer(h)
print(layer)
print(
    f"share zeroed {(out == 0).float().mean():.3f}, kept units become {out.max():.1f}, "
    f"mean {h.mean():.3f} -> {out.mean():.3f}; in eval mode: {layer.eval()(h).mean():.3f}"
)

# %%
# Dropout against over-fitting
# ----------------------------
# The same network and budget with dropout after each hidden layer.
from mla_course.experiments import OVERFITTING, sweep

base = OVERFITTING.replace(epochs=pick(full=OVERFITTING.epochs, quick_value=5))
rates = (0.0, 0.2, 0.5)
table = sweep(
    {f"p={p}": base.replace(dropout=p) for p in rates},
    seeds=range(pick(full=2, quick_value=1)),
    device=device,
)
table

# %%
# With dropout the training loss falls more slowly: the network cannot learn
# each image by heart as easily when units go missing at random. The figure
# and the table show what it buys on the test set. On so few images, dropout
# alone does not stop the test loss from climbing back after its minimum (the
# network still grows over-confident); compare with the penalties of the
# previous page, and combine them in the final exercise.
import matplotlib.pyplot as plt

axes = plots.plot_table_curves(table)
axes[2].set_ylim(bottom=60)
plt.show()

# %%
# *Temps d'apprentissage augmenté (+ d'epochs nécessaires)*: the number of
# epochs each network needs to fit its training set, and to reach its lowest
# test loss.
for label, result in table.items():
    train_acc, _ = result.curve("train_acc")
    test_loss, _ = result.curve("test_loss")
    fitted = (train_acc >= 0.99).nonzero()
    fit_epoch = f"at epoch {int(fitted[0]) + 1}" if len(fitted) else "not within the budget"
    print(
        f"{label}: 99% training accuracy {fit_epoch}; "
        f"lowest test loss at epoch {int(test_loss.argmin()) + 1}"
    )

# %%
# Et en test ?
# ------------
# At test time the network is a random function :math:`f(x, z; \theta)` of
# the mask :math:`z`. We want the average,
# :math:`\hat y = \mathbb{E}_z[f(x, z; \theta)]`, not one random draw. Three
# ways to get it:
#
# 1. Monte-Carlo: average the predicted probabilities over many random masks
#    (:func:`~mla_course.layers.mc_dropout_predict`, :cite:p:`gal2016dropout`);
# 2. the original rule: no scaling in training, multiply the activations by
#    the keep probability :math:`1-p` at test time (``Dropout(p, inverted=False)``);
# 3. inverted dropout: scale by :math:`1/(1-p)` in training, nothing at test.
#
# Rules 2 and 3 replace the average by a single pass, an approximation that is
# exact for a linear network. We train one network each way, with the
# from-scratch layer, and also show what happens if one forgets to scale.
import functools

from mla_course.experiments import load_data
from mla_course.layers import mc_dropout_predict
from mla_course.models import MLP
from mla_course.train import fit, predict

p = 0.5
(X, y), (X_test, y_test) = load_data(base, device)
nets = {}
for inverted in (True, False):
    torch.manual_seed(0)
    nets[inverted] = MLP(
        base.sizes, "relu", dropout=p, dropout_layer=functools.partial(Dropout, inverted=inverted)
    ).to(device)
    optimizer = torch.optim.SGD(nets[inverted].parameters(), lr=base.lr, momentum=0.9)
    fit(nets[inverted], optimizer, (X, y), (X_test, y_test), epochs=base.epochs)


def scores(probs):
    """Test accuracy and cross-entropy of predicted probabilities ``(n, 10)``."""
    nll = -torch.log(probs[torch.arange(len(y_test)), y_test].clamp_min(1e-12)).mean()
    return (probs.argmax(1) == y_test).float().mean().item(), nll.item()


def one_pass(net):
    return scores(torch.softmax(predict(net, X_test), 1))


rules = {
    "inverted dropout, one pass": one_pass(nets[True]),
    "original rule, x (1 - p) at test": one_pass(nets[False]),
}
for m in nets[False].modules():  # forget the test-time scaling: activations 1/(1-p) too large
    if isinstance(m, Dropout):
        m.inverted = True  # in evaluation mode an inverted layer is the identity
rules["original rule, scaling forgotten"] = one_pass(nets[False])
torch.manual_seed(0)
n_samples = pick(full=[1, 3, 10, 30, 100], quick_value=[1, 10])
mc = {n: scores(mc_dropout_predict(nets[True], X_test, n)) for n in n_samples}
rules |= {f"Monte-Carlo, {n} masks": v for n, v in mc.items()}
for rule, (acc, loss) in rules.items():
    print(f"{rule:>34}: test accuracy {100 * acc:.2f}%, test loss {loss:.3f}")

# %%
# On the inverted network, one mask is a poor prediction and a few dozen masks
# match the accuracy of the one-pass rule, which costs a single forward pass:
# this is why inverted dropout is the default. The loss tells more: the
# single pass averages the *scores* (for a linear network that is exact), the
# Monte-Carlo estimate averages the *probabilities*, the lecture's
# :math:`\mathbb{E}_z[f(x, z; \theta)]`, and it is better calibrated.
#
# The two one-pass rules compute the same kind of average; their networks
# differ because training without the :math:`1/(1-p)` factor is training with
# smaller activations, in effect another step size. Forgetting the scaling
# makes every activation :math:`1/(1-p)` times too large: in a ReLU network
# the ranking of the classes moves little but the probabilities become
# over-confident, which the loss shows.
fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
for ax, i, label in zip(axes, (0, 1), ("test accuracy (%)", "test loss"), strict=True):
    scale = 100 if i == 0 else 1
    ax.plot(
        n_samples, [scale * mc[n][i] for n in n_samples], marker="o", label="Monte-Carlo average"
    )
    ax.axhline(
        scale * rules["inverted dropout, one pass"][i],
        color=plots.OKABE_ITO[1],
        ls="--",
        label="inverted dropout, one pass",
    )
    ax.set(
        xscale="log",
        xlabel="number of random masks averaged",
        ylabel=label,
        title=f"{label.capitalize()}, network trained with p = {p}",
    )
    ax.legend()
plt.show()
probs_one_pass = torch.softmax(predict(nets[True], X_test), 1)
probs_mc = mc_dropout_predict(nets[True], X_test, max(n_samples))
print(
    f"mean |MC - one pass| over the probabilities: {(probs_mc - probs_one_pass).abs().mean():.4f}"
)

# %%
# What to remember
# ----------------
# * Dropout zeroes random units at every step; the network cannot rely on any
#   one of them, which limits over-fitting, at the price of more epochs.
# * At test time use the expected network: inverted dropout (scale during
#   training) gives it in one pass; Monte-Carlo averaging gives it by sampling,
#   with an uncertainty estimate as a bonus.
#
# Further reading
# ---------------
# :cite:p:`srivastava2014dropout`, Monte-Carlo dropout :cite:p:`gal2016dropout`,
# and chapter 7.12 of :cite:p:`goodfellow2016deep`.

# sphinx_gallery_thumbnail_number = 1
