"""
Penalising the norm of the weights: L2 and L1
=============================================

*Réduire l'erreur de prédiction sur la base d'apprentissage ne suffit pas*: a
network with many more weights than training examples can learn them by heart.
The lecture's first remedy limits its capacity by adding a penalty to the loss,
:math:`\\mathcal{L} = \\sum_i \\ell(f(x^{(i)}; \\theta), y^{*(i)}) + \\alpha\\,\\Omega(\\theta)`,
and asks *quelle norme choisir ?* We compare the squared L2 norm (weight decay,
ridge, Tikhonov) and the L1 norm (LASSO) on a setting where over-fitting is
plain to see: only the first 500 MNIST training images, a 784-256-256-10 ReLU
network (270,000 weights) and 40 epochs of SGD with momentum. Accuracy is
measured on the first 2,000 test images to keep the page fast.
"""

# %%
# The penalties as code
# ---------------------
# :func:`~mla_course.regularization.l2_penalty` returns
# :math:`\frac{\alpha}{2}\sum w^2` over the weight matrices (biases are not
# penalised: they do not add flexibility), whose gradient is :math:`\alpha w`:
# exactly the ``weight_decay=alpha`` of PyTorch's SGD. One step each way:
import torch
import torch.nn.functional as F

from mla_course import plots
from mla_course.models import MLP
from mla_course.regularization import l1_penalty, l2_penalty
from mla_course.utils import get_device, pick

plots.use_style()
device = get_device()
torch.manual_seed(0)
net_a, net_b = MLP((784, 32, 10), "relu"), MLP((784, 32, 10), "relu")
net_b.load_state_dict(net_a.state_dict())
x, y = torch.randn(16, 784), torch.randint(0, 10, (16,))
opt_a = torch.optim.SGD(net_a.parameters(), lr=0.1)
weights = [p for name, p in net_b.named_parameters() if name.endswith("weight")]
biases = [p for name, p in net_b.named_parameters() if name.endswith("bias")]
opt_b = torch.optim.SGD([{"params": weights, "weight_decay": 0.01}, {"params": biases}], lr=0.1)
(F.cross_entropy(net_a(x), y) + l2_penalty(alpha=0.01)(net_a)).backward()
F.cross_entropy(net_b(x), y).backward()
opt_a.step(), opt_b.step()
gap = max(
    (p - q).abs().max().item() for p, q in zip(net_a.parameters(), net_b.parameters(), strict=True)
)
print(f"{l2_penalty(alpha=0.01)} vs SGD(weight_decay=0.01): max weight difference {gap:.1e}")
print(l1_penalty(alpha=1e-4), "adds alpha * sign(w) to the gradient: a constant pull to 0")

# %%
# Train with and without a penalty
# --------------------------------
# :func:`~mla_course.experiments.sweep` trains each configuration over several
# seeds. The L2 runs use the optimiser's ``weight_decay`` (the same update as
# above, here on the biases too), the L1 runs add :math:`\alpha \sum |w|` to
# the loss.
from mla_course.experiments import OVERFITTING, sweep

base = OVERFITTING.replace(epochs=pick(full=OVERFITTING.epochs, quick_value=5))
configs = {"no penalty": base}
configs |= {f"L2, alpha={a:g}": base.replace(weight_decay=a) for a in (3e-3, 1e-2)}
configs |= {f"L1, alpha={a:g}": base.replace(l1=a) for a in (1e-4, 3e-4)}
table = sweep(configs, seeds=range(pick(full=2, quick_value=1)), device=device)
table

# %%
# The training loss reaches zero without a penalty, and the test loss, after a
# few epochs, climbs back up: the network becomes ever more confident on
# examples it gets wrong. Both penalties stop that rise; the gain in accuracy
# is smaller than the gain in loss.
import matplotlib.pyplot as plt

best_l2 = max((k for k in table if k.startswith("L2")), key=lambda k: table[k].mean())
best_l1 = max((k for k in table if k.startswith("L1")), key=lambda k: table[k].mean())
shown = ["no penalty", best_l2, best_l1]
axes = plots.plot_table_curves(table, shown)
axes[2].set_ylim(bottom=60)
plt.show()

for k in shown:
    test_loss, _ = table[k].curve("test_loss")
    print(
        f"{k:>16}: lowest test loss at epoch {int(test_loss.argmin()) + 1}, "
        f"{test_loss.min():.3f}; last epoch {test_loss[-1]:.3f}"
    )

# %%
# What the penalties do to the weights
# ------------------------------------
# We retrain the three networks with seed 0 and look at all their weights. L2
# shrinks every weight in proportion to its size: the distribution narrows but
# stays smooth. L1 pulls each weight towards 0 by the same amount whatever its
# size: *favorise les solutions parcimonieuses*, with many weights near zero.
# (With plain gradient steps they hover around 0 rather than land on it; a
# proximal step, soft thresholding, would make them exactly 0.)
from mla_course.experiments import run

torch.manual_seed(0)
init = (
    torch.cat([layer.weight.flatten() for layer in MLP(base.sizes, "relu").linears]).detach().abs()
)
threshold = 1e-3
fig, ax = plt.subplots(figsize=(7, 3.8))
for k in shown:
    _, model = run(table[k].config, seed=0, device=device, return_model=True)
    w = torch.cat([layer.weight.detach().flatten().cpu() for layer in model.linears])
    ax.hist(w, bins=200, range=(-0.2, 0.2), histtype="step", lw=1.5, label=k)
    print(
        f"{k:>16}: {100 * (w.abs() < threshold).float().mean():5.1f}% of weights below "
        f"{threshold:g} in absolute value, largest |w| = {w.abs().max():.2f}"
    )
print(f"{'at initialisation':>16}: {100 * (init < threshold).float().mean():5.1f}%")
ax.set(
    yscale="log",
    xlabel="weight value",
    ylabel="number of weights",
    title=f"The {len(w):,} weights after training (|w| < 0.2 shown)",
)
ax.legend()
plt.show()

# %%
# What to remember
# ----------------
# * A norm penalty trades a little training loss for a smaller, more cautious
#   network; it matters most when training data are few.
# * L2 (weight decay) shrinks all weights; with SGD it is the optimiser's
#   ``weight_decay``. L1 drives many weights to (nearly) zero: sparse networks.
# * :math:`\alpha` is a hyper-parameter: too large and the network under-fits.
#
# Further reading
# ---------------
# Chapter 7 of :cite:p:`goodfellow2016deep`, weight decay in neural networks
# :cite:p:`krogh1992simple`, and the LASSO :cite:p:`tibshirani1996regression`.

# sphinx_gallery_thumbnail_number = 1
