"""
Data augmentation, mixup, cutout, cutmix and early stopping
===========================================================

The lecture's *autres méthodes de régularisation*: rather than constrain the
network, give it more (plausible) data. *Augmentation des données*: a digit
shifted by a pixel or slightly rotated is still the same digit. *Injection de
bruit en entrée*: add noise to the inputs. And three recent recipes that the
lecture's table compares on ImageNet: mixup :cite:p:`zhang2018mixup` blends two
images and their labels, cutout :cite:p:`devries2017improved` blanks a square,
cutmix :cite:p:`yun2019cutmix` pastes a patch of another image and mixes the
labels by area. Finally, *early stopping* :cite:p:`prechelt1998early` stops
training when a validation loss stops improving.

Every transform lives in :mod:`mla_course.regularization` and plugs into
``fit(..., transform=...)``. We use the over-fitting setting of the previous
pages: 500 training images, a 784-256-256-10 ReLU network, SGD with momentum,
test accuracy on the first 2,000 test images.
"""

# %%
# What the transforms do
# ----------------------
# Each row applies one transform to the same eight training digits. Mixup and
# cutmix return *soft labels*: the title gives the two classes and their
# weights, which sum to 1. Both draw one mixing weight per batch from a Beta
# distribution; with mixup's :math:`\alpha = 0.4` it is most often close to 0
# or 1, and the draw shown here mixes more than most.
import matplotlib.pyplot as plt
import torch

from mla_course import plots
from mla_course.experiments import OVERFITTING, load_data
from mla_course.regularization import CutMix, Cutout, GaussianNoise, Mixup, ShiftRotate
from mla_course.utils import get_device, pick

plots.use_style()
device = get_device()
base = OVERFITTING.replace(epochs=pick(full=OVERFITTING.epochs, quick_value=4))
(X, y), (X_test, y_test) = load_data(base, device)

transforms = {
    "shift ±2 px, rotation ±15°": lambda g: ShiftRotate(2.0, 15.0, generator=g),
    "Gaussian noise, std 0.5": lambda g: GaussianNoise(0.5, generator=g),
    "mixup, alpha 0.4": lambda g: Mixup(0.4, generator=g),
    "cutout, 12 px": lambda g: Cutout(12, generator=g),
    "cutmix, alpha 1": lambda g: CutMix(1.0, generator=g),
}


def describe(label):
    """'7' for a hard label; '7: 0.62, 1: 0.38' for a soft one."""
    if label.dim() == 0:
        return str(int(label))
    top = label.topk(2)
    return ", ".join(f"{int(c)}: {w:.2f}" for w, c in zip(*top, strict=True) if w > 0)


xb, yb = X[:8], y[:8]
rows = [("original", xb, yb)]
rows += [
    (name, *make(torch.Generator().manual_seed(0))(xb, yb)) for name, make in transforms.items()
]
fig, axes = plt.subplots(len(rows), 8, figsize=(11, 1.55 * len(rows)))
vmin, vmax = X.min().item(), X.max().item()  # one grey scale for every image
for row, (name, images, labels) in zip(axes, rows, strict=True):
    for ax, image, label in zip(row, images.cpu(), labels.cpu(), strict=True):
        ax.imshow(image.reshape(28, 28), cmap="gray_r", vmin=vmin, vmax=vmax)
        ax.set_title(describe(label), fontsize=7)
        ax.set_xticks([]), ax.set_yticks([])
        ax.spines[:].set_visible(False)
    row[0].set_ylabel(name, fontsize=7.5, rotation=0, ha="right", va="center")
fig.suptitle("Eight training digits under each transform (title: label or soft label)")
plt.show()

# %%
# Training with each transform
# ----------------------------
# The transform is applied to every mini-batch, with a fresh random draw each
# time, so the network never sees exactly the same batch twice. Runs are cached
# on disk (:func:`mla_course.cache.memoize`).
from mla_course import cache
from mla_course.experiments import Result, Table
from mla_course.models import MLP
from mla_course.train import History, fit


def network(seed):
    """A network of ``base`` (initial weights set by ``seed``) and its optimiser."""
    torch.manual_seed(seed)
    model = MLP(base.sizes, base.activation).to(device)
    return model, torch.optim.SGD(model.parameters(), lr=base.lr, momentum=0.9)


def train(name, seed, **kwargs):
    """Train ``base`` with transform ``name`` (or none) and ``seed``: History and model."""
    model, optimizer = network(seed)
    transform = transforms[name](torch.Generator().manual_seed(seed)) if name else None
    history = fit(
        model,
        optimizer,
        (X, y),
        (X_test, y_test),
        epochs=base.epochs,
        seed=seed,
        transform=transform,
        **kwargs,
    )
    return history, model


def cached_run(name, seed):
    parts = {"page": "plot_14", "config": base.to_dict(), "transform": name, "seed": seed}
    return History.from_dict(cache.memoize(parts, lambda: train(name, seed)[0].to_dict()))


seeds = list(range(pick(full=2, quick_value=1)))
table = Table(
    {
        name or "no augmentation": Result(base, seeds, [cached_run(name, s) for s in seeds])
        for name in (None, *transforms)
    }
)
table

# %%
# The table gives what each transform changes on 500 images. The curves show
# how: without augmentation the test loss rises again after a few epochs (the
# network grows over-confident); a transform that brings plausible new
# variants of the images at every epoch can keep it falling for longer.
# Shifts and small rotations are variants a handwritten digit really meets;
# noise, blanked squares and blends are not, which the table lets us weigh.
ax1, ax2 = plots.plot_table_curves(table, metrics=("test_loss", "test_acc"), figsize=(12, 3.8))
ax1.legend(fontsize=7), ax2.legend(fontsize=7)
ax2.set_ylim(bottom=70)
plt.show()

# %%
# Early stopping
# --------------
# Without augmentation the test loss reaches a minimum after a few epochs and
# then rises. :class:`~mla_course.regularization.EarlyStopping` watches the loss
# on a *validation* split (2,000 training images the network never trains on:
# choosing the epoch on the test set would make the test score optimistic),
# stops after ``patience`` epochs without improvement and restores the best
# weights.
from mla_course.data import load_tensors
from mla_course.regularization import EarlyStopping
from mla_course.train import evaluate

X_all, y_all = load_tensors("mnist", "train", device=device)
val = (X_all[-2000:], y_all[-2000:])  # far from the first 500 used for training
no_aug = table["no augmentation"]
print(
    f"no early stopping, {base.epochs} epochs: test loss {no_aug.mean('test_loss'):.3f}, "
    f"test accuracy {100 * no_aug.mean('test_acc'):.2f}%"
)
for monitor in ("test_loss", "test_acc"):  # fit calls its second split "test": here, validation
    stopper = EarlyStopping(patience=pick(full=5, quick_value=2), monitor=monitor)
    model, optimizer = network(seed=0)
    history = fit(model, optimizer, (X, y), val, epochs=base.epochs, on_epoch_end=stopper)
    if stopper.stopped_epoch is None:  # the budget ran out first: restore by hand
        stopper.restore(model)
    test_loss, test_acc = evaluate(model, [(X_test, y_test)])
    print(
        f"watching the validation {monitor[5:]}: stopped after {history.epochs} epochs, "
        f"kept epoch {stopper.best_epoch}: test loss {test_loss:.3f}, "
        f"test accuracy {100 * test_acc:.2f}%"
    )
    if monitor == "test_loss":
        by_loss, stopper_loss = history, stopper

# %%
# The lowest validation loss may come before the accuracy has finished
# improving: the quantity early stopping watches matters, and should be the one
# we care about. The run that watched the loss:
history, stopper = by_loss, stopper_loss
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.plot(range(1, history.epochs + 1), history.test_loss, marker=".", label="validation loss")
ax.axvline(stopper.best_epoch, color="gray", ls="--", lw=1, label="best epoch (restored)")
ax.axvline(history.epochs, color=plots.OKABE_ITO[3], ls=":", lw=1.5, label="stopped")
ax.set(
    xlabel="epoch",
    ylabel="validation loss",
    title=f"Early stopping with patience {stopper.patience}",
)
ax.legend()
plt.show()

# %%
# What to remember
# ----------------
# * Augmentation encodes what should not change the answer (small shifts,
#   rotations, noise): free extra data, and often the strongest regulariser.
# * Mixup and cutmix also mix the labels, in proportion to the mix of the
#   images; cutout hides a part of the image and keeps the label.
# * Early stopping chooses the number of epochs on a validation split and
#   keeps the best weights: cheap, and it combines with everything else.
#
# Further reading
# ---------------
# Chapter 7 of :cite:p:`goodfellow2016deep`; mixup :cite:p:`zhang2018mixup`,
# cutout :cite:p:`devries2017improved`, cutmix :cite:p:`yun2019cutmix`; early
# stopping :cite:p:`prechelt1998early`.

# sphinx_gallery_thumbnail_number = 1
