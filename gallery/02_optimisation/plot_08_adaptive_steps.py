"""
Adapting the step size: AdaGrad, RMSProp, Adam
==============================================

*Il faut avancer rapidement lorsque le gradient est faible et stable, et
lentement lorsqu'il est fort et instable.* AdaGrad (Duchi et al.) gives each
parameter its own step, :math:`\\epsilon/(\\delta+\\sqrt{r})`, where :math:`r`
accumulates that parameter's squared gradients. RMSProp replaces the sum by a
moving average; Adam adds a momentum on top. The lecture asks about AdaGrad:
*Intérêt ? Effet à long terme ?*

We run the from-scratch optimisers of :mod:`mla_course.optim` on the 2-D
surfaces of :mod:`mla_course.surfaces` (a ravine, a saddle, Rosenbrock's
valley), watch AdaGrad's step shrink while training on MNIST (the first
10,000 images, 3 epochs), and end with a second-order method, L-BFGS.
"""

# %%
# One step size per parameter
# ---------------------------
# On the ravine the gradient along the floor is small and constant while the
# walls are steep. Gradient descent moves by :math:`\epsilon\,g`: a step small
# enough for the walls crawls along the floor. The adaptive methods divide each
# coordinate by its own gradient scale, so RMSProp and Adam move by about
# :math:`\epsilon` in every direction; AdaGrad too at first, then by
# :math:`\epsilon/\sqrt{t}` since its :math:`r` only grows. All methods get the same :math:`\epsilon` on each
# surface, except gradient descent on Rosenbrock, which diverges with it and
# gets the largest step of :math:`\{10^{-3}, 2\cdot10^{-3}, \dots\}` that does not.
from functools import partial

import matplotlib.pyplot as plt
import torch

from mla_course import optim, plots
from mla_course import surfaces as S
from mla_course.utils import pick

plots.use_style()
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
fig, axes = plt.subplots(1, 3, figsize=(14, 4))
for ax, (name, (lr, lr_sgd, n)) in zip(axes, settings.items(), strict=True):
    surface, paths = S.SURFACES[name], {}
    for label, make in makers.items():
        eps = lr_sgd if label == "SGD" else lr
        path = S.trajectory(surface, partial(make, lr=eps), surface.start, n)
        paths[f"{label} (ε={eps:g})"] = path
        print(f"{name:>10} {label:>8}: loss after {n} steps {surface(path[-1]):.3g}")
    S.draw(surface, paths, ax=ax)
    ax.set_title(f"{surface.name}, {n} steps")
plt.show()

# %%
# Near the saddle the gradient across the ridge is tiny; dividing it by its own
# small scale enlarges it, so the adaptive methods leave the ridge at once. In
# Rosenbrock's curved valley, compare the losses printed above: AdaGrad's steps
# have shrunk before it reaches the end of the valley.
#
# AdaGrad in the long run: the step keeps shrinking
# -------------------------------------------------
# :math:`r` only grows: if the gradients keep the same scale, :math:`r` grows
# like :math:`t` and AdaGrad's step like :math:`1/\sqrt{t}`, whether or not the
# optimum is near. RMSProp and Adam forget old gradients and keep a steady step.
# We train the network of Question 1 and record the mean size of the update
# :math:`|\Delta w|` of the first layer's weights at each step.
import torch.nn.functional as F

from mla_course.data import iterate_batches
from mla_course.experiments import Config, load_data
from mla_course.models import MLP
from mla_course.train import evaluate

config = Config(
    n_train=pick(full=10_000, quick_value=2_000), n_test=pick(full=None, quick_value=2_000)
)
(X, y), (X_test, y_test) = load_data(config)
epochs = pick(full=3, quick_value=1)
choices = {
    "AdaGrad ε=0.05": (optim.AdaGrad, 0.05),
    "RMSProp ε=1e-3": (optim.RMSProp, 1e-3),
    "Adam ε=1e-3": (optim.Adam, 1e-3),
}
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
for label, (cls, lr) in choices.items():
    torch.manual_seed(0)
    model = MLP([784, 120, 80, 10], "sigmoid")
    opt, w = cls(model.parameters(), lr=lr), model.linears[0].weight
    step_sizes, losses = [], []
    for epoch in range(epochs):
        for xb, yb in iterate_batches(X, y, 64, generator=torch.Generator().manual_seed(epoch)):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            before = w.detach().clone()
            opt.step()
            step_sizes.append((w.detach() - before).abs().mean().item())  # mean |Δw|
            losses.append(loss.item())
    test_loss, test_acc = evaluate(model, [(X_test, y_test)])
    print(
        f"{label}: test accuracy {100 * test_acc:.1f}% after {epochs} epoch(s); mean |Δw| "
        f"{step_sizes[9]:.2g} at step 10, {step_sizes[-1]:.2g} at step {len(step_sizes)}"
    )
    k, n = len(step_sizes) // 5, len(step_sizes)
    ratio = torch.tensor(step_sizes[k - 5 : k + 5]).mean() / torch.tensor(step_sizes[-10:]).mean()
    print(f"    mean |Δw| at step {k} / at step {n}: {ratio:.2f} (1/sqrt(t): {(n / k) ** 0.5:.2f})")
    ax1.loglog(range(1, len(step_sizes) + 1), step_sizes, label=label)
    ax2.plot(plots.block_average(losses, 20)[1], label=label)
    if cls is optim.AdaGrad:  # anchor a 1/sqrt(t) line on AdaGrad's step at t = 10
        t = torch.arange(10, len(step_sizes) + 1.0)
        ax1.loglog(t, step_sizes[9] * (10 / t).sqrt(), "k:", label=r"$\propto 1/\sqrt{t}$")
ax1.set(xlabel="step t", ylabel="mean |Δw| (first layer)", title="Size of the updates")
ax2.set(
    xlabel="step (×20)",
    ylabel="training loss (mean of 20 steps)",
    title="Training loss",
    yscale="log",
)
ax1.legend()
ax2.legend()
plt.show()

# %%
# *Intérêt :* early on, AdaGrad's per-parameter steps make fast progress, and
# over these few epochs it is still ahead. *Effet à long terme :* its updates
# shrink like :math:`1/\sqrt{t}` (the dotted line, and the ratios printed
# above) and will keep shrinking however long we train, while RMSProp's and
# Adam's shrink less: their averages forget old gradients.
#
# A second-order method: L-BFGS
# -----------------------------
# *Certaines méthodes s'appuient sur des approximations d'ordre 2.* L-BFGS
# builds an approximation of the inverse Hessian from the last gradients and
# searches along the resulting direction with a line search. It needs the full
# gradient (no mini-batch noise), so we compare on a small convex problem:
# softmax regression on the first images of MNIST, full batch, against the loss
# reached per second by gradient descent and Adam.
import time

n_small = pick(full=2_000, quick_value=500)
Xs, ys = X[:n_small], y[:n_small]
contenders = {
    "gradient descent ε=0.5": (partial(torch.optim.SGD, lr=0.5), 300),
    "Adam ε=0.01": (partial(optim.Adam, lr=0.01), 300),
    "L-BFGS (strong Wolfe)": (partial(torch.optim.LBFGS, lr=1, line_search_fn="strong_wolfe"), 15),
}
fig, ax = plt.subplots(figsize=(7, 4))
for label, (make, iterations) in contenders.items():
    torch.manual_seed(0)
    model = torch.nn.Linear(784, 10)
    opt = make(model.parameters())
    evaluations = [0]

    def closure(model=model, opt=opt, evaluations=evaluations):
        evaluations[0] += 1
        opt.zero_grad()
        loss = (
            F.cross_entropy(model(Xs), ys) + 1e-3 * model.weight.pow(2).sum()
        )  # L2: a unique minimum
        loss.backward()
        return loss

    start, times, losses = time.perf_counter(), [], []
    for _ in range(pick(full=iterations, quick_value=max(5, iterations // 5))):
        losses.append(opt.step(closure).item())
        times.append(time.perf_counter() - start)
    ax.semilogy(times, losses, ".-", label=label)
    print(
        f"{label}: loss {losses[-1]:.4f} after {len(losses)} steps, {evaluations[0]} gradient "
        f"evaluations, {times[-1]:.2f} s"
    )
ax.set(
    xlabel="time (s)",
    ylabel="training loss",
    title=f"Softmax regression, {n_small} images, full batch",
)
ax.legend()
plt.show()

# %%
# On a smooth, deterministic, moderately sized problem, L-BFGS reaches a lower
# loss in fewer steps, each costing several gradient evaluations. With
# mini-batches the gradient is noisy and the curvature estimates degrade, and
# storing even a few vectors of the size of the network gets costly: deep
# networks are trained with first-order methods.
#
# What to remember
# ----------------
# * AdaGrad, RMSProp and Adam divide each coordinate of the gradient by its
#   own scale: the step no longer depends on how steep each direction is.
# * AdaGrad's accumulated :math:`r` only grows, so its step shrinks like
#   :math:`1/\sqrt{t}`: good for convex problems and sparse features, too early
#   a stop for deep networks. RMSProp's moving average fixes it; Adam adds
#   momentum and a bias correction (next page).
# * Second-order methods such as L-BFGS shine on small, full-batch problems.
#
# Further reading
# ---------------
# AdaGrad :cite:p:`duchi2011adaptive`, RMSProp :cite:p:`hinton2012rmsprop`,
# Adam :cite:p:`kingma2015adam`, L-BFGS :cite:p:`liu1989limited`, and chapter 8
# of the Deep Learning book :cite:p:`goodfellow2016deep`.

# sphinx_gallery_thumbnail_number = 1
