"""
Adapting the step size: AdaGrad, RMSProp, Adam
==============================================

*Il faut avancer rapidement lorsque le gradient est faible et stable, et
lentement lorsqu'il est fort et instable.* AdaGrad (Duchi et al.) gives each
parameter its own step, :math:`\\epsilon/(\\delta+\\sqrt{r})`, where
:math:`r` accumulates that parameter's squared gradients. RMSProp replaces
the sum by a moving average; Adam adds a momentum on top. The lecture asks
about AdaGrad: *Intérêt ? Effet à long terme ?*

We read the two update rules, run them on the 2-D surfaces of
:mod:`mla_course.surfaces` (a ravine, a saddle, Rosenbrock's valley), watch
AdaGrad's step shrink while training on MNIST (the first 10,000 images, 3
epochs).
"""

# %%
# The update rules
# ----------------
# AdaGrad, as the package runs it (the optimiser classes and the batched
# engine call this one function):
from functools import partial

import matplotlib.pyplot as plt
import torch

from mla_course import optim, plots
from mla_course import surfaces as S
from mla_course.claims import check, check_order
from mla_course.settings import pick
from mla_course.source import show_source

plots.use_style()
show_source(optim.adagrad_update)

# %%
# RMSProp differs in one line: :math:`r` is a moving average, not a sum.
show_source(optim.rmsprop_update)

# %%
# One step size per parameter
# ---------------------------
# On the ravine the gradient along the floor is small and constant while the
# walls are steep. Gradient descent moves by :math:`\epsilon\,g`: a step
# small enough for the walls crawls along the floor. The adaptive methods
# divide each coordinate by its own gradient scale, so they move by about
# :math:`\epsilon` in every direction; AdaGrad only at first, since its
# :math:`r` only grows. All get the same :math:`\epsilon` on each surface,
# except gradient descent on Rosenbrock, which diverges with it (checked
# below) and gets a tenth of it.
makers = {  # momentum has its own page
    "SGD": optim.SGD,
    "AdaGrad": optim.AdaGrad,
    "RMSProp": partial(optim.RMSProp, alpha=0.9),
    "Adam": optim.Adam,
}
settings = {  # surface: (epsilon, SGD's epsilon, steps)
    "ravine": (0.1, 0.1, 150),
    "saddle": (0.05, 0.05, 150),
    "rosenbrock": (0.02, 0.002, pick(full=1000, quick_value=300)),
}
paths, end, first = {}, {}, {}  # path; final loss; first step over ridge
for name, (lr, lr_sgd, n) in settings.items():
    surface = S.SURFACES[name]
    for label, make in makers.items():
        eps = lr_sgd if label == "SGD" else lr
        path = S.trajectory(surface, partial(make, lr=eps), surface.start, n)
        paths[name, label] = path
        end[name, label] = surface(path[-1]).item()
        first[name, label] = abs(path[1, 1] - path[0, 1]).item()
        print(f"{name:>10} {label:>8}: loss {end[name, label]:.3g}")

# %%
# Top, the paths, one line style and marker per method (a marker every
# tenth of the run); bottom, the loss above the surface's minimum at each
# step, on a log scale. Where a method's curve flattens out, it has stopped
# making progress.
styles = {"SGD": "-o", "AdaGrad": "--s", "RMSProp": ":^", "Adam": "-.D"}
fig, axes = plt.subplots(2, 3, figsize=(14, 7.5), height_ratios=(3, 2))
for col, (name, (lr, lr_sgd, n)) in zip(axes.T, settings.items(), strict=True):
    surface = S.SURFACES[name]
    lowest = surface(torch.tensor(surface.minimum, dtype=torch.float64))
    plots.draw_surface(surface, ax=col[0])
    for label, style in styles.items():
        path, kw = paths[name, label], {"markevery": n // 10, "label": label}
        col[0].plot(path[:, 0], path[:, 1], style, ms=4, **kw)
        col[1].semilogy(surface(path) - lowest, style, ms=4, **kw)
    col[0].set_title(f"{surface.name}: ε = {lr:g} (SGD: {lr_sgd:g})")
    col[1].set(xlabel="step", ylabel="loss − minimum")
    col[1].set_title(f"{surface.name}: loss, {n} steps")
axes[0, 0].legend(loc="upper right")
plt.show()

# %%
# The checks behind the next paragraph. The ravine's minimum is 0.1, the
# saddle's minima -0.25.
adaptive = ("AdaGrad", "RMSProp", "Adam")
check(
    "on the ravine, RMSProp and Adam reach the floor's end (loss < 0.12), "
    "SGD and AdaGrad do not",
    max(end["ravine", k] for k in ("RMSProp", "Adam"))
    < 0.12
    < min(end["ravine", k] for k in ("SGD", "AdaGrad")),
    measured=", ".join(f"{k} {end['ravine', k]:.3f}" for k in makers),
)
across = min(first["saddle", k] for k in adaptive) / first["saddle", "SGD"]
check(
    "at the saddle, every adaptive method's first step across the ridge is "
    "10 times SGD's or more",
    across > 10,
    measured=f"smallest ratio {across:.0f}",
)
adagrad = end["rosenbrock", "AdaGrad"]
others = max(end["rosenbrock", k] for k in ("SGD", "RMSProp", "Adam"))
check(
    "on Rosenbrock, AdaGrad ends 10 times higher than the other three",
    adagrad > 10 * others,
    full_only=True,  # 300 steps: the others are still on their way
    measured=f"AdaGrad {adagrad:.3g}, the others at most {others:.3g}",
)
rosenbrock = S.SURFACES["rosenbrock"]
wild = S.trajectory(
    rosenbrock, partial(optim.SGD, lr=0.02), rosenbrock.start, n
)
check(
    "on Rosenbrock, gradient descent diverges with the others' ε = 0.02",
    not torch.isfinite(wild).all(),
    measured=f"final loss {rosenbrock(wild[-1]).item():.3g}",
)

# %%
# On the ravine, RMSProp and Adam run down the floor while gradient descent
# crawls, and AdaGrad slows down on the way. Near the saddle the gradient
# across the ridge is tiny; dividing it by its own small scale enlarges it,
# so the adaptive methods leave the ridge at once. In Rosenbrock's curved
# valley, AdaGrad's steps have shrunk long before it reaches the end.
#
# AdaGrad in the long run: the step keeps shrinking
# -------------------------------------------------
# :math:`r` only grows: if the gradients keep the same scale, :math:`r` grows
# like :math:`t` and AdaGrad's step like :math:`1/\sqrt{t}`, whether or not
# the optimum is near. RMSProp and Adam forget old gradients. We train the
# network of Question 1 with the plain loop, written out because it records
# the mean size of the update :math:`|\Delta w|` of the first layer at each
# step, over 5 seeds (initial weights and batch order).
import torch.nn.functional as F

from mla_course.config import Config
from mla_course.data import iterate_batches
from mla_course.models import MLP
from mla_course.runs import load_data
from mla_course.settings import seed_everything

config = Config(n_train=pick(full=10_000, quick_value=2_000))
(X, y), _ = load_data(config)
epochs = pick(full=3, quick_value=1)


def update_sizes(cls, lr, seed=0):
    """Train with optimiser cls; the mean |Δw| of the first layer per step."""
    order = seed_everything(seed)  # the batch order, epoch after epoch
    model = MLP(config.sizes, "sigmoid")
    opt, w = cls(model.parameters(), lr=lr), model.linears[0].weight
    sizes = []
    for _ in range(epochs):
        for xb, yb in iterate_batches(X, y, 64, generator=order):
            opt.zero_grad()
            F.cross_entropy(model(xb), yb).backward()
            before = w.detach().clone()
            opt.step()
            sizes.append((w.detach() - before).abs().mean().item())
    return torch.tensor(sizes)


# %%
# The sizes of the updates, and the ratio of the size at step :math:`t/5`
# to the size at the last step :math:`t`: :math:`\sqrt{5} \approx 2.24` for a
# step that shrinks like :math:`1/\sqrt{t}`, 1 for a steady one.
choices = {
    "AdaGrad ε=0.05": (optim.AdaGrad, 0.05),
    "RMSProp ε=1e-3": (optim.RMSProp, 1e-3),
    "Adam ε=1e-3": (optim.Adam, 1e-3),
}
sizes, shrink = {}, {}  # mean sizes over the seeds; ratio per seed
for label, (cls, lr) in choices.items():
    runs = torch.stack([update_sizes(cls, lr, seed) for seed in range(5)])
    n = runs.shape[1]
    early = runs[:, n // 5 - 5 : n // 5 + 5].mean(1)  # (seeds,)
    shrink[label] = (early / runs[:, -10:].mean(1)).tolist()
    sizes[label] = runs.mean(0)
    ratios = ", ".join(f"{r:.2f}" for r in shrink[label])
    print(f"{label}: |Δw| at step {n // 5} / at step {n} = {ratios}")

# %%
# On logarithmic axes a step that shrinks like :math:`1/\sqrt{t}` is a
# straight line of slope :math:`-1/2` (dotted, through AdaGrad's step 10):
fig, ax = plt.subplots(figsize=(7, 4))
for label, size in sizes.items():
    ax.loglog(range(1, len(size) + 1), size, label=label)
t, at_10 = torch.arange(10, n + 1.0), sizes["AdaGrad ε=0.05"][9]
ax.loglog(t, at_10 * (10 / t).sqrt(), "k:", label=r"$\propto 1/\sqrt{t}$")
ax.set(xlabel="step t", ylabel="mean |Δw| (first layer)")
ax.set_title(f"Size of the updates, {epochs} epoch(s)")
ax.legend()
plt.show()
ada = shrink["AdaGrad ε=0.05"]
ratios = ", ".join(f"{r:.2f}" for r in ada)
check(
    "AdaGrad's update shrinks at least as fast as 1/sqrt(t), on every seed",
    min(ada) > 5**0.5,
    full_only=True,  # one short epoch is mostly transient
    measured=f"ratios {ratios}; sqrt 5 = {5**0.5:.2f}",
)
for label in ("RMSProp ε=1e-3", "Adam ε=1e-3"):
    check_order(
        f"{label.split()[0]}'s update shrinks less than AdaGrad's",
        ada,
        shrink[label],
        metric="ratio",
        paired=True,  # the same 5 seeds
        full_only=True,
    )

# %%
# *Intérêt :* from the first step, each weight moves by about
# :math:`\epsilon` whatever the scale of its gradient (the exercise below).
# *Effet à long terme :* its updates shrink at least as fast as
# :math:`1/\sqrt{t}` (the dotted line; faster here, as the gradients
# themselves get smaller while the loss falls), and :math:`r` keeps growing
# however long we train, while RMSProp's and Adam's updates shrink less:
# their averages forget old gradients.
#
# What to remember
# ----------------
# * AdaGrad, RMSProp and Adam divide each coordinate of the gradient by its
#   own scale: the step no longer depends on how steep each direction is.
# * AdaGrad's accumulated :math:`r` only grows, so its step
#   :math:`\epsilon/(\delta+\sqrt{r})` only shrinks, however long it trains
#   (its updates shrank at least like :math:`1/\sqrt{t}` here); RMSProp's
#   moving average forgets, and Adam adds momentum and a bias correction
#   (next page). Whether the shrinking step costs accuracy depends on the
#   budget: the :doc:`comparison page <plot_10_optimiser_comparison>` tunes
#   AdaGrad and the others for 2 epochs.
#
# Further reading
# ---------------
# AdaGrad :cite:p:`duchi2011adaptive`, RMSProp :cite:p:`hinton2012rmsprop`,
# Adam :cite:p:`kingma2015adam`, and chapter 8 of the Deep Learning book
# :cite:p:`goodfellow2016deep`.
#
# Exercise
# --------
#
# **Exercise.** Predict first: on the ravine, from its starting point, how
# far does the *first* step of AdaGrad, of RMSProp (:math:`\alpha = 0.9`)
# and of Adam move along each coordinate, with :math:`\epsilon = 0.1`? Then
# take one step with each (``S.trajectory(..., 1)``) and look.

# %% [solution]
# **Solution.** At the first step :math:`r` holds :math:`g^2` (AdaGrad),
# :math:`(1-\alpha)g^2` (RMSProp) or, after the bias correction, :math:`g^2`
# (Adam). So AdaGrad and Adam move by :math:`\epsilon = 0.1` along *each*
# coordinate, whatever the gradient, and RMSProp by
# :math:`\epsilon/\sqrt{1-\alpha} \approx 0.32`: the sign of the gradient,
# scaled.
ravine = S.SURFACES["ravine"]
expected = {"AdaGrad": 0.1, "RMSProp": 0.1 / 0.1**0.5, "Adam": 0.1}
for label, move in expected.items():
    path = S.trajectory(
        ravine, partial(makers[label], lr=0.1), ravine.start, 1
    )
    steps = ", ".join(f"{v:.4f}" for v in (path[1] - path[0]).abs().tolist())
    print(f"{label}: first step ({steps}), expected {move:.4f}")

# sphinx_gallery_thumbnail_number = 1
