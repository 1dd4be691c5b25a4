"""
Dropout
=======

*A chaque mise à jour des poids, un ensemble de neurones sont désactivés
aléatoirement*: each hidden unit is zeroed with probability :math:`p`, a new
random mask at every step :cite:p:`srivastava2014dropout`. The lecture reads it
as an ensemble of networks that share their weights, which must not rely on
any single unit. It asks what to do at test time (*Et en test ?*) and warns
that training takes longer.

We use the over-fitting setting of the previous page
(:data:`~mla_course.config.OVERFITTING`: 500 training images, a
784-256-256-10 ReLU network, SGD with momentum, test accuracy on the first
2,000 test images) and train with dropout rates 0, 0.2 and 0.5 on the
hidden units, over 3 seeds. The next page compares the test-time rules.
"""

# %%
# The layer
# ---------
# :class:`~mla_course.layers.Dropout` draws a mask of zeros and ones. In
# its *inverted* form, the usual one and PyTorch's, the kept units are
# multiplied by :math:`1/(1-p)` during training so that each unit keeps
# its expected value, and the layer does nothing at test time. The module
# calls this function of the package:
import torch
from torch import nn

from mla_course import plots
from mla_course.claims import check, check_order
from mla_course.layers import Dropout, dropout
from mla_course.settings import get_device, pick, seed_everything
from mla_course.source import show_source

plots.use_style()
device = get_device()
show_source(dropout)

# %%
# On 100,000 units equal to 1, with :math:`p = 0.5`:
layer = Dropout(0.5, generator=torch.Generator().manual_seed(0))
h = torch.ones(100_000)  # (units,)
out = layer(h)
zeroed = (out == 0).float().mean().item()
check(
    "about half the units are zeroed (within 4 binomial std)",
    abs(zeroed - 0.5) < 4 * (0.25 / len(h)) ** 0.5,
    measured=f"share zeroed {zeroed:.4f}",
)
check(
    "the kept units become 1 / (1 - p) = 2 and the layer is the identity "
    "in evaluation mode",
    set(out.unique().tolist()) == {0.0, 2.0}
    and torch.equal(layer.eval()(h), h),
    measured=f"values {sorted(out.unique().tolist())}, "
    f"eval mean {layer.eval()(h).mean():.3f}",
)

# %%
# Dropout against over-fitting
# ----------------------------
# The same network and budget with dropout after each hidden layer.
from mla_course.config import OVERFITTING
from mla_course.runs import sweep

base = OVERFITTING.replace(epochs=pick(full=OVERFITTING.epochs, quick_value=5))
rates = (0.0, 0.2, 0.5)
table = sweep({f"p={p}": base.replace(dropout=p) for p in rates})
table

# %%
# With dropout the training loss falls more slowly: the network cannot
# learn each image by heart as easily when units go missing at random
# (*temps d'apprentissage augmenté*). On the test set a light dropout,
# :math:`p = 0.2`, gains accuracy, and so does :math:`p = 0.5` at this
# budget. On so few images, dropout alone does not stop
# the test loss from climbing back after its minimum (the network still
# grows over-confident); compare with the penalties of the previous page.
import matplotlib.pyplot as plt

axes = plots.plot_table_curves(table)
axes[2].set_ylim(bottom=60)
plt.show()

# %%
# The claims of the paragraph above, checked over the 3 seeds:
epoch = 5  # early in training (the last epoch in quick mode)
early = {
    k: [h.train_loss[epoch - 1] for h in r.histories] for k, r in table.items()
}
check_order(
    f"p = 0.5 has a higher training loss than p = 0 after {epoch} epochs",
    early["p=0.5"],
    early["p=0.0"],
    metric="train_loss",
)
check_order(
    "p = 0.2 ends with a higher test accuracy than no dropout",
    table["p=0.2"],
    table["p=0.0"],
    full_only=True,
)
check_order(
    "p = 0.5 ends with a higher test accuracy than no dropout",
    table["p=0.5"],
    table["p=0.0"],
    full_only=True,
)
curve, _ = table["p=0.5"].curve("test_loss")
check(
    "with p = 0.5 the test loss still climbs back after its minimum",
    curve[-1] - curve.min() > 0.05,
    measured=f"last minus lowest test loss {curve[-1] - curve.min():.3f}",
    full_only=True,
)

# %%
# What to remember
# ----------------
# * Dropout zeroes random units at every step; the network cannot rely on
#   any one of them, which limits over-fitting, at the price of more
#   epochs.
# * On 500 images a light dropout raises the test accuracy, yet the test
#   loss still climbs back: it does not replace a norm penalty. The next
#   page asks what to do at test time.
#
# Further reading
# ---------------
# :cite:p:`srivastava2014dropout` and chapter 7.12 of
# :cite:p:`goodfellow2016deep`.
#
# Exercises
# ---------
#
# **Exercise 1.** *Force le réseau à être moins sensible au bruit*: predict
# first. At test time, zero half of the hidden units at random (and double
# the others) in the networks of the table trained with :math:`p = 0` and
# with :math:`p = 0.5`. Which one loses more accuracy? The helper below
# applies such a mask; :func:`~mla_course.runs.train_network` gives back
# the networks of the table.
from mla_course.runs import load_data, train_network
from mla_course.train import predict

_, (X_test, y_test) = load_data(base)


@torch.no_grad()
def accuracy_with_noise(model, generator):
    """Test accuracy with half the hidden units zeroed, the rest doubled."""

    def drop(module, inputs, out):
        keep = torch.rand(out.shape, generator=generator) < 0.5
        return out * keep.to(out.device) * 2

    hooks = [
        m.register_forward_hook(drop)
        for m in model.modules()
        if isinstance(m, nn.ReLU)
    ]
    acc = (predict(model, X_test).argmax(1) == y_test).float().mean().item()
    for hook in hooks:
        hook.remove()
    return acc


# %% [solution]
# **Solution.** The network trained without dropout has never seen a unit
# go missing and loses more (averaged over 5 random masks per network):
# dropout taught the other one not to rely on any single unit.
loss_of = {}
for k in ("p=0.0", "p=0.5"):
    loss_of[k] = []
    for seed in table[k].seeds:
        _, model = train_network(table[k].config, seed)
        clean = (predict(model, X_test).argmax(1) == y_test).float().mean()
        gen = seed_everything(seed)
        noisy = sum(accuracy_with_noise(model, gen) for _ in range(5)) / 5
        loss_of[k].append(clean.item() - noisy)
    print(f"{k}: accuracy lost per seed", [f"{v:.1%}" for v in loss_of[k]])
check_order(
    "the network trained without dropout loses more accuracy",
    loss_of["p=0.0"],
    loss_of["p=0.5"],
    metric="test_acc",
)

# sphinx_gallery_thumbnail_number = 1
