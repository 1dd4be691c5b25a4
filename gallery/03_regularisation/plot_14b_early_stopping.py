"""
Early stopping: choosing the number of epochs on a validation split
===================================================================

The last item of the lecture's *autres méthodes de régularisation*: *early
stopping* :cite:p:`prechelt1998early`. Stop training when the loss on data
the network does not train on stops improving, and keep the weights of the
best epoch. When should the over-fitting network of the previous pages stop,
and what does stopping buy on the test set?

The setting is :data:`~mla_course.config.OVERFITTING` (500 training images, a
784-256-256-10 ReLU network, 40 epochs), with the *last* 2,000 training
images held out as a validation split: ``Config(holdout=2000,
evaluate_on="validation")`` reports its ``test_*`` metrics on them. Every
choice is made there; the test set (the first 2,000 test images) is read
once, at the end. Choosing the epoch on the test set would make the test
score optimistic.
"""

# %%
# The validation curves
# ---------------------
# Five seeds of the network, measured on the validation split after every
# epoch.
import statistics

import matplotlib.pyplot as plt

from mla_course import plots
from mla_course.claims import check
from mla_course.config import OVERFITTING
from mla_course.runs import sweep
from mla_course.settings import pick

plots.use_style()
seeds = (0, 1, 2, 3, 4)
base = OVERFITTING.replace(
    epochs=pick(full=OVERFITTING.epochs, quick_value=6),
    holdout=2000,
    evaluate_on="validation",
)
validation = sweep({"validation": base}, seeds=seeds)["validation"]
loss, _ = validation.curve("test_loss")  # on the validation split
acc, _ = validation.curve("test_acc")
best_loss, best_acc = int(loss.argmin()) + 1, int(acc.argmax()) + 1
print(
    f"lowest validation loss at epoch {best_loss}, "
    f"highest validation accuracy at epoch {best_acc}"
)

# %%
# The validation loss falls for a few epochs, then rises for good: the
# network learns its 500 images by heart and grows over-confident on the
# others. The accuracy does not fall with it: it peaks later, while the loss
# rises, because a confident mistake costs much more loss than a confident
# right answer gains.
check(
    "the validation loss ends over 15 % above its minimum",
    loss[-1] > 1.15 * loss.min(),
    measured=f"minimum {loss.min():.3f} at epoch {best_loss}, "
    f"last {loss[-1]:.3f}",
    full_only=True,
)
check(
    "the validation loss is lowest in the first quarter of training",
    best_loss <= base.epochs // 4,
    measured=f"epoch {best_loss} of {base.epochs}",
    full_only=True,
)
check(
    "the validation accuracy peaks after the loss does",
    best_acc > best_loss,
    measured=f"epochs {best_acc} and {best_loss}",
    full_only=True,
)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
epochs = range(1, base.epochs + 1)
ax1.plot(epochs, loss, marker=".")
ax2.plot(epochs, 100 * acc, marker=".")
for ax, best in ((ax1, best_loss), (ax2, best_acc)):
    ax.axvline(best, color="gray", ls="--", lw=1, label=f"best: {best}")
    ax.set(xlabel="epoch")
    ax.legend()
ax1.set(ylabel="validation loss", title="Loss (mean of 5 seeds)")
ax2.set(ylabel="validation accuracy (%)", title="Accuracy (mean of 5 seeds)")
plt.show()

# %%
# The rule, from the package
# --------------------------
# :class:`~mla_course.train.EarlyStopping` is called by the training
# loop after each epoch. It keeps a copy of the weights whenever the
# monitored value improves, and stops after ``patience`` epochs without
# improvement, loading the best weights back.
from mla_course.source import show_source
from mla_course.train import EarlyStopping

show_source(EarlyStopping.__call__)

# %%
# Stopping, then reading the test set once
# ----------------------------------------
# The loop is the lesson here, so we train with :func:`~mla_course.train.fit`
# and the stopper as its ``on_epoch_end``; :func:`~mla_course.runs.build`
# gives the network and optimiser a sweep would start from. We stop on the
# validation loss, or on the validation accuracy, with a patience of 5.
from mla_course.runs import build, load_data
from mla_course.train import evaluate, fit

train, val = load_data(base)
_, test = load_data(base.replace(evaluate_on="test"))
stopped = {"validation loss": [], "validation accuracy": []}
for seed in seeds:
    for watch, monitor in zip(stopped, ("test_loss", "test_acc"), strict=True):
        stopper = EarlyStopping(
            patience=pick(full=5, quick_value=2), monitor=monitor
        )  # fit's "test": validation
        model, optimizer = build(base, seed)
        history = fit(
            model,
            optimizer,
            train,
            val,
            epochs=base.epochs,
            seed=seed,
            on_epoch_end=stopper,
        )
        if stopper.stopped_epoch is None:  # the budget ran out first
            stopper.restore(model)
        test_loss, test_acc = evaluate(model, [test])
        stopped[watch].append((history.epochs, test_loss, test_acc))
        print(
            f"seed {seed}, watching the {watch}: kept epoch "
            f"{stopper.best_epoch}, test loss {test_loss:.3f}, "
            f"test accuracy {100 * test_acc:.2f} %"
        )

# %%
# Against the full budget, on the same test images: the same five seeds,
# trained for all the epochs.
from mla_course.claims import check_order, check_unresolved

full = sweep({"all": base.replace(evaluate_on="test")}, seeds=seeds)["all"]
by_loss, by_acc = (list(zip(*stopped[k], strict=True)) for k in stopped)
rows = {"all epochs": (full.values("test_loss"), full.values("test_acc"))}
rows |= {f"stop on the {k}": zip(*v, strict=True) for k, v in stopped.items()}
for label, (*_, losses, accs) in rows.items():
    m, sd = statistics.mean, statistics.stdev
    loss_text = f"test loss {m(losses):.3f} ± {sd(losses):.3f}"
    acc_text = f"test accuracy {100 * m(accs):.2f} ± {100 * sd(accs):.2f} %"
    print(f"{label:>31}: {loss_text}, {acc_text}")

# %%
# Stopping at the lowest validation loss gives a lower test loss, in a
# fraction of the epochs, but an accuracy not resolved from the full run's.
# Stopping on the validation accuracy is not resolved from the full run
# either. The quantity early stopping
# watches matters: watch the one you care about.
epochs_text = f"stopped after {by_loss[0]} epochs"
claim = "stopping on the loss ends training in the first half of the budget"
check(
    claim,
    max(by_loss[0]) <= base.epochs // 2,
    measured=epochs_text,
    full_only=True,
)
claim = "stopping on the loss gives a lower test loss"
losses = full.values("test_loss")
check_order(
    claim, losses, by_loss[1], metric="test_loss", paired=True, full_only=True
)
claim = "stop on the loss: the accuracy gain is below what 5 seeds resolve"
check_unresolved(claim, by_loss[2], full.values(), paired=True, full_only=True)
claim = "stop on the accuracy: the difference is below what 5 seeds resolve"
check_unresolved(claim, by_acc[2], full.values(), paired=True, full_only=True)

# %%
# Validation is not test
# ----------------------
# The networks trained for all the epochs are those of the validation curves
# (same 500 images, same seeds), read on two splits: they score much higher
# on the validation split than on the test set. The validation images come
# from the end of MNIST's training set, written by the same pool of writers
# as the training images; the test set's writers are others
# :cite:p:`lecun1998gradient`. The epoch chosen there carries over; the
# validation score does not.
claim = "the same networks score higher on validation than on the test set"
check_order(claim, validation, full)

# %%
# What to remember
# ----------------
# * Early stopping chooses the number of epochs on a validation split, never
#   on the test set, and keeps the weights of the best epoch.
# * The validation loss and the validation accuracy do not peak together:
#   an over-fitting network grows over-confident before it grows wrong.
# * It is cheap: training ends early. Report the test score, not the
#   validation score it was chosen on: the two splits differ.
#
# Further reading
# ---------------
# :cite:t:`prechelt1998early`; section 7.8 of :cite:p:`goodfellow2016deep`.

# %%
# Exercises
# ---------
#
# **Exercise 1.** Predict first: with the shifts and rotations of the
# previous page (``augment="shift_rotate"``), does the validation loss reach
# its minimum earlier or later than without, and is that minimum lower? Then
# train it and look at its curve.
shifted = base.replace(
    augment="shift_rotate",
    augment_kwargs={"max_shift": 2.0, "max_degrees": 15.0},
)

# %% [solution]
# **Solution.** Later, and lower: every epoch brings new variants of the 500
# images, so the network takes far longer to learn them by heart.
aug = sweep({"aug": shifted}, seeds=seeds[:3])["aug"]  # 3 seeds: costly
aug_loss, _ = aug.curve("test_loss")
aug_best = int(aug_loss.argmin()) + 1
check(
    "with augmentation the validation loss is lowest later",
    aug_best > best_loss,
    measured=f"epoch {aug_best}, against {best_loss} without",
    full_only=True,
)
check(
    "with augmentation its minimum is lower",
    aug_loss.min() < loss.min(),
    measured=f"{aug_loss.min():.3f}, against {loss.min():.3f} without",
    full_only=True,
)

# sphinx_gallery_thumbnail_number = 1
