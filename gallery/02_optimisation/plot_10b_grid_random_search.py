"""
Grid search or random search?
=============================

*Quelle méthode utiliser ? Grid search ? Random search ?* The lecture asks it
of the parameters; for the parameters, gradient descent wins (the previous
pages). For the *hyper*-parameters, which have no gradient, the question
stands. Bergstra and Bengio :cite:p:`bergstra2012random` argue that when
only a few hyper-parameters matter, random search beats grid search at the
same budget: a :math:`3 \\times 3` grid tries only three values of each
hyper-parameter, nine random points try nine.

We tune two hyper-parameters of the network of Question 1 trained with SGD:
the step size :math:`\\rho`, log-uniform in :math:`[10^{-3}, 10]`, and the
weight decay :math:`\\lambda` (an L2 penalty), log-uniform in
:math:`[10^{-5}, 10^{-3}]`. Each trial trains on the first 5,000 MNIST
training images for 2 epochs and is scored on a validation split (the last
5,000 training images). Grid search and random search get 9 trials each;
the whole comparison is repeated 7 times (new random points, new seeds),
the 18 networks of a repetition trained together in one batched sweep.
"""

# %%
# Nine grid points, nine random points
# ------------------------------------
# The grid takes the two ends and the (logarithmic) middle of each range.
# Repetition :math:`r` draws its random points with seed :math:`r` and
# trains every network of the repetition, grid and random, with seed
# :math:`r`.
import math

import matplotlib.pyplot as plt
import torch

from mla_course import plots
from mla_course.claims import check, check_order
from mla_course.config import Config
from mla_course.runs import sweep
from mla_course.settings import generator, pick

plots.use_style()
base = Config(
    n_train=pick(full=5_000, quick_value=1_000),
    holdout=pick(full=5_000, quick_value=1_000),
    evaluate_on="validation",
    epochs=2,
)
lr_range, wd_range = (-3.0, 1.0), (-5.0, -3.0)  # log10 of the ranges
repeats = pick(full=7, quick_value=3)


def grid_points():
    """log10 (lr, weight decay) of the 3 x 3 grid."""
    axis = [torch.linspace(*r, 3) for r in (lr_range, wd_range)]
    return torch.cartesian_prod(*axis)  # (9, 2)


def random_points(seed):
    """log10 (lr, weight decay) of 9 points drawn uniformly."""
    g = generator(seed)
    low, high = torch.tensor([lr_range, wd_range], dtype=torch.float64).T
    return low + torch.rand(9, 2, generator=g, dtype=torch.float64) * (
        high - low
    )


# %%
# The trials of every repetition, by (search, repetition, index):
trials = {}  # -> log10 (lr, weight decay)
for r in range(repeats):
    for search in ("grid", "random"):
        points = grid_points() if search == "grid" else random_points(r)
        for i, point in enumerate(points.tolist()):
            trials[search, r, i] = point
configs = {
    key: base.replace(lr=10**lr, weight_decay=10**wd)
    for key, (lr, wd) in trials.items()
}

# %%
# The sweep
# ---------
# Each network has its own seed here (that of its repetition), so we call
# :func:`~mla_course.runs.sweep` once per repetition; the networks of a
# repetition are trained together.
accuracy = {}  # (search, repetition, i) -> validation accuracy
for r in range(repeats):
    keys = [key for key in configs if key[1] == r]
    table = sweep({str(k): configs[k] for k in keys}, seeds=[r])
    for k in keys:
        accuracy[k] = table[str(k)].mean()  # NaN if it diverged


def top(keys):
    """The best trial among keys; a diverged trial is a failed one."""
    return max(
        keys, key=lambda k: -1 if math.isnan(accuracy[k]) else accuracy[k]
    )


# %%
# Which hyper-parameter matters?
# ------------------------------
# Left: every trial of every repetition in the plane of the two
# hyper-parameters, coloured by validation accuracy (squares: the grid,
# dots: random points). Right: the same accuracies against the step size
# alone. They fall on one curve: the weight decay barely matters here, the
# step size decides. Every repetition tries the same 9 grid points, so the
# grid's trials are drawn side by side, one per repetition, shifted a little
# along the step size (the drawing only: the trials are those of the grid).
points = torch.tensor(list(trials.values()))  # (trials, 2), log10
acc = 100 * torch.tensor(list(accuracy.values()))
is_grid = torch.tensor([key[0] == "grid" for key in trials])
shift = torch.tensor([0.08 * (r - (repeats - 1) / 2) for _, r, _ in trials])
drawn = points[:, 0] + torch.where(is_grid, shift, 0.0)  # log10 step size
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11.5, 4))
fig.get_layout_engine().set(wspace=0.08)  # room for the colour bar's label
colours = {"vmin": 0, "vmax": 100, "cmap": "viridis", "edgecolors": "k"}
for mask, marker, name in ((is_grid, "s", "grid"), (~is_grid, "o", "random")):
    xy, c = (drawn[mask], points[mask, 1]), acc[mask]
    im = ax1.scatter(*xy, c=c, marker=marker, label=name, **colours)
    ax2.plot(drawn[mask], acc[mask], marker, mfc="none", label=name)
fig.colorbar(im, ax=ax1, label="validation accuracy (%)")
ax1.set(xlabel="log10 step size", ylabel="log10 weight decay")
ax1.set_title(f"{len(trials)} trials, {repeats} repetitions")
ax2.set(xlabel="log10 step size", ylabel="validation accuracy (%)")
ax2.set_title("Accuracy against the step size alone")
for ax in (ax1, ax2):
    ax.legend()
plt.show()

# %%
# On the grid, the accuracy varies far more across the three step sizes (at
# a fixed weight decay) than across the three weight decays (at a fixed
# step size), in every repetition on average:
grid_acc = torch.tensor(
    [[100 * accuracy["grid", r, i] for i in range(9)] for r in range(repeats)]
).view(repeats, 3, 3)  # (repetition, step size, weight decay)
over_lr = (grid_acc.amax(1) - grid_acc.amin(1)).nanmean().item()
over_wd = (grid_acc.amax(2) - grid_acc.amin(2)).nanmean().item()
check(
    "on the grid, the step size moves the accuracy 5 times more than the "
    "weight decay",
    over_lr > 5 * over_wd,
    measured=f"mean range over step sizes {over_lr:.1f} points, over weight "
    f"decays {over_wd:.1f}",
)

# %%
# Grid against random, at the same budget
# ---------------------------------------
# The grid tries three step sizes, 0.001, 0.1 and 10; random search tries
# nine, spread over the whole range. We measure the largest gap, in decades,
# between neighbouring step sizes tried (the ends of the range included).


def largest_gap(log_lrs):
    ends = torch.tensor(lr_range, dtype=torch.float64)
    edges = torch.cat([ends[:1], torch.sort(log_lrs).values, ends[1:]])
    return edges.diff().max().item()


gaps = {
    search: [
        largest_gap(torch.tensor([trials[search, r, i][0] for i in range(9)]))
        for r in range(repeats)
    ]
    for search in ("grid", "random")
}
mean_gap = {search: sum(g) / repeats for search, g in gaps.items()}
check(
    "random search leaves smaller holes in the step sizes than the grid",
    mean_gap["random"] < mean_gap["grid"],
    measured=f"largest gap: grid {mean_gap['grid']:.2f} decades, random "
    f"{mean_gap['random']:.2f} on average",
)


# %%
# Where does each search find its best trial, and how good is it? The best
# random trial usually has a step size the grid never tries:
best_lr = [
    trials[top([("random", r, i) for i in range(9)])][0]
    for r in range(repeats)
]
between = sum(-1 < lr < 1 for lr in best_lr)
check(
    "in most repetitions the best random trial has a step size between 0.1 "
    "and 10, which the grid never tries",
    between > repeats / 2,
    measured=f"{between} of {repeats} repetitions; best random steps "
    + ", ".join(f"{10**lr:.2g}" for lr in best_lr),
)
best = {
    search: [
        accuracy[top([(search, r, i) for i in range(9)])]
        for r in range(repeats)
    ]
    for search in ("grid", "random")
}
for search, values in best.items():
    print(
        f"best {search} trial per repetition:",
        [round(100 * v, 1) for v in values],
    )
check_order(
    "at the same budget, random search finds a better validation accuracy",
    best["random"],
    best["grid"],
    paired=True,  # repetition r: the same seed for both searches
    full_only=True,  # 1,000 images and 3 repetitions: too noisy
)

# %%
# With three values spread over four decades, the grid has nothing between
# 0.1 and 10, where the best random trials lie, and neither the weight
# decay, which barely matters, nor a second seed can make up for it. Random
# search spends each of its nine trials on a new step size. A grid that
# happened to put a value near the best step would do as well; random search
# does not rely on that luck.
# Bergstra and Bengio :cite:p:`bergstra2012random` show the same on larger
# problems, where a few hyper-parameters out of many matter, and which ones
# differ from one data set to the next.
#
# What to remember
# ----------------
# * At the same budget, a grid tries few distinct values of each
#   hyper-parameter; random search tries a new value of every one at each
#   trial. When only some hyper-parameters matter, that wins.
# * Draw step sizes (and other scale parameters) log-uniformly.
# * Choose on a validation split, never on the test set (the
#   :doc:`comparison page <plot_10_optimiser_comparison>`).
#
# Further reading
# ---------------
# Bergstra and Bengio, *Random search for hyper-parameter optimization*
# :cite:p:`bergstra2012random`; chapter 11.4 of the Deep Learning book
# :cite:p:`goodfellow2016deep`.
#
# Exercise
# --------
#
# **Exercise.** Predict first: how many of its nine random trials does
# random search need, on average over the repetitions, to beat the best of
# the nine grid trials? Read it from ``accuracy``, taking the random trials
# in the order they were drawn.

# %% [solution]
# **Solution.** Few: each random trial has a fair chance of landing in the
# useful decade of step sizes that the grid never visits. The number needed
# in each repetition, counting the random trials in the order they were
# drawn (a diverged trial, NaN, never beats the grid):
needed = [  # the first random trial above the grid's best; 10: none of them
    min((i + 1 for i in range(9) if accuracy["random", r, i] > g), default=10)
    for r, g in enumerate(best["grid"])
]
print("random trials needed to beat the grid:", needed)
few = sum(n <= 3 for n in needed)
check(
    "in most repetitions, one of the first 3 random trials beats the grid",
    few > repeats / 2,
    measured=f"{few} of {repeats}; trials needed: "
    + ", ".join(str(n) for n in needed),
)

# sphinx_gallery_thumbnail_number = 1
