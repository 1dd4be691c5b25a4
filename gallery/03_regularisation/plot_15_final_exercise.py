"""
The final exercise: optimisers and regularisers on MNIST
========================================================

The lecture ends with an exercise: *reprendre le réseau de reconnaissance des
chiffres manuscrits (base MNIST) et tester différentes stratégies
d'optimisation et de régularisation. Quelle est la meilleure configuration
trouvée ? Quelles performances ? Qu'apprend le réseau ?* We take the network of
Question 1 (784-120-80-10, sigmoid) and search in two stages, as one would by
hand: first the optimiser (the six of :mod:`mla_course.optim`, each with its
usual step size, those of the optimiser comparison page), then, with the best
optimiser, the regularisers of this chapter. Every configuration runs over
several seeds.

The budget is small, to keep the page to a couple of minutes on a CPU: the
first 20,000 training images, 3 epochs. Accuracy is measured on the full test
split. The step sizes are not tuned here (the optimiser comparison page does
that), and we choose the optimiser on the *training* loss, the quantity it
minimises.
"""

# %%
# Stage 1: the optimiser
# ----------------------
import matplotlib.pyplot as plt
import torch

from mla_course import plots
from mla_course.experiments import Config, sweep
from mla_course.utils import get_device, pick

plots.use_style()
device = get_device()
base = Config(
    n_train=pick(full=20_000, quick_value=2_000),
    n_test=pick(full=None, quick_value=2_000),
    epochs=pick(full=3, quick_value=1),
)
momentum = (("momentum", 0.9),)
optimisers = {  # name: (step size, extra arguments)
    "sgd": (0.3, ()),
    "momentum": (0.03, momentum),
    "nesterov": (0.03, momentum),
    "adagrad": (0.03, ()),
    "rmsprop": (1e-3, ()),
    "adam": (1e-3, ()),
}
seeds = range(pick(full=3, quick_value=1))
stage1 = sweep(
    {
        name: base.replace(optimizer=name, lr=lr, optimizer_kwargs=kw)
        for name, (lr, kw) in optimisers.items()
    },
    seeds=seeds,
    device=device,
)
best_optimiser = stage1.best("train_loss", largest=False)
print(f"lowest training loss: {best_optimiser}")
stage1

# %%
# Stage 2: regularisation and normalisation
# -----------------------------------------
# With the best optimiser: an L2 penalty (weight decay), an L1 penalty, dropout
# on the hidden units, batch norm before each sigmoid; and, to tell
# over-fitting from under-fitting, the same network trained twice as long.
chosen = stage1[best_optimiser].config
candidates = {
    "nothing": chosen,
    "L2 1e-4": chosen.replace(weight_decay=1e-4),
    "L1 1e-5": chosen.replace(l1=1e-5),
    "dropout 0.2": chosen.replace(dropout=0.2),
    "batch norm": chosen.replace(batch_norm="before"),
    f"{2 * base.epochs} epochs": chosen.replace(epochs=2 * base.epochs),
}
if pick(full=False, quick_value=True):
    candidates = dict(list(candidates.items())[:2])  # quick mode: two candidates
stage2 = sweep(
    {f"{best_optimiser} + {k}": c for k, c in candidates.items()}, seeds=seeds, device=device
)
stage2

# %%
# The answer
# ----------
# *Quelle est la meilleure configuration trouvée ? Quelles performances ?* The
# best mean test accuracy over both stages. Choosing it on the test set makes
# this number slightly optimistic; a clean protocol would choose on a
# validation split, as the early-stopping example of the previous page does.
results = {**stage1, **stage2}
best = max(results, key=lambda k: results[k].mean("test_acc"))
r = results[best]
print(f"best configuration: {best}")
print(
    f"test accuracy {100 * r.mean('test_acc'):.2f} ± {100 * r.std('test_acc'):.2f}% "
    f"(mean ± std over {len(r.seeds)} seeds), test loss {r.mean('test_loss'):.3f}"
)

fig, ax = plt.subplots(figsize=(8, 4.2))
labels = list(results)
means = [100 * results[k].mean("test_acc") for k in labels]
stds = [100 * results[k].std("test_acc") for k in labels]
colours = [plots.OKABE_ITO[0] if k in stage1 else plots.OKABE_ITO[1] for k in labels]
ax.barh(labels, means, xerr=stds, color=colours, capsize=3)
ax.set(
    xlim=(min(means) - 3, max(means) + 1.5),
    xlabel="test accuracy (%), mean ± std",
    title=f"Stage 1 (blue): optimisers; stage 2 (orange): with {best_optimiser}",
)
ax.invert_yaxis()
ax.grid(axis="y", visible=False)
plt.show()

# %%
# Qu'apprend le réseau ?
# ----------------------
# Each unit of the first layer computes :math:`w^\top x + b`: its weight vector
# has one entry per pixel, so it is itself a 28x28 image, the pattern that
# excites the unit most. We retrain one network per optimiser with seed 0 (so
# all start from the *same* weights) and show the first 8 units, all on one
# colour scale (red positive, blue negative).
from mla_course.experiments import run

units = 8
weights = {}
for name in optimisers:
    _, model = run(stage1[name].config, seed=0, device=device, return_model=True)
    weights[name] = model.linears[0].weight.detach().cpu()[:units].reshape(units, 28, 28)
vmax = max(w.abs().max().item() for w in weights.values())
fig, axes = plt.subplots(len(weights), units, figsize=(1.3 * units, 1.35 * len(weights)))
for row, (name, w) in zip(axes, weights.items(), strict=True):
    for ax, image in zip(row, w, strict=True):
        im = ax.imshow(image, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
        ax.set_xticks([]), ax.set_yticks([])
        ax.spines[:].set_visible(False)
    row[0].set_ylabel(name, rotation=0, ha="right", va="center")
fig.colorbar(im, ax=axes, shrink=0.6, label="weight")
fig.suptitle(f"First-layer weights of units 1 to {units}, after {base.epochs} epoch(s)")
plt.show()

# %%
# Every row starts from the same random pattern. The printed distances below
# measure how far each optimiser moved these weights from it in the same
# number of steps: the adaptive ones, which give each weight its own step,
# move them furthest and draw pen strokes and blobs, positive where a stroke of
# some digit excites the unit, negative where ink argues against it. The ones
# with one global step size leave more of the initial noise visible.
from mla_course.models import MLP

torch.manual_seed(0)  # run() seeds like this before building: the common starting point
w0 = MLP(base.sizes, base.activation).linears[0].weight.detach()[:units].reshape(units, 28, 28)
for name, w in weights.items():
    print(f"{name:>9}: mean |w - w_init| = {(w - w0).abs().mean():.4f}")

# %%
# What to remember
# ----------------
# * On a short budget the optimiser matters most: adaptive steps train the
#   sigmoid network of Question 1 much faster than plain SGD.
# * Regularisation pays when the network over-fits (few data, many epochs, see
#   the previous pages); on a short budget the network under-fits, and
#   training longer is the first thing to compare with.
# * Report a mean and a standard deviation over seeds, and choose on data the
#   final score does not use.
# * The first layer learns stroke detectors, visible as images.
#
# Further reading
# ---------------
# Chapters 7 and 8 of :cite:p:`goodfellow2016deep`; the optimisers
# :cite:p:`duchi2011adaptive,hinton2012rmsprop,kingma2015adam`; batch norm
# :cite:p:`ioffe2015batch` and dropout :cite:p:`srivastava2014dropout`.

# sphinx_gallery_thumbnail_number = 2
