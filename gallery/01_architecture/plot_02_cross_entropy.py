r"""
The cross-entropy loss and its gradient
=======================================

The network outputs one score :math:`o_j` per class; the softmax turns the
scores into probabilities :math:`\hat y_j = S(o_j) = e^{o_j} / \sum_k e^{o_k}`,
and the cross-entropy compares them with the target :math:`y^*` (one-hot: 1 for
the true class, 0 elsewhere):

.. math::

    l_{CE}(\hat y, y^*) = -\sum_{i=1}^{N_{\text{classes}}} y^*_i \log \hat y_i .

The lecture's exercise asks for the gradient of this loss with respect to the
scores :math:`o`. We derive it, check it numerically, ask what happens when the
outputs are not probabilities (*Que se passe-t-il si les sorties du réseau ne
sont pas des probabilités ?*), see why the softmax and the log must be computed
together, and compare softmax + cross-entropy with the older sigmoid + squared
error on MNIST, with the same network and the same training budget.
"""

# %%
# The exercise: :math:`\partial l / \partial o`
# ---------------------------------------------
# Write :math:`\log \hat y_i = o_i - \log \sum_k e^{o_k}`. Differentiating,
#
# .. math::
#
#     \frac{\partial \log \hat y_i}{\partial o_j} = \delta_{ij} - \frac{e^{o_j}}{\sum_k e^{o_k}}
#     = \delta_{ij} - \hat y_j ,
#
# so that
#
# .. math::
#
#     \frac{\partial l_{CE}}{\partial o_j}
#     = -\sum_i y^*_i (\delta_{ij} - \hat y_j)
#     = -y^*_j + \hat y_j \sum_i y^*_i
#     = \hat y_j - y^*_j ,
#
# since :math:`\sum_i y^*_i = 1`. The gradient is the *error* of the prediction,
# :math:`\partial l / \partial o = \mathrm{softmax}(o) - y^*`: nothing in it
# shrinks when a score is large, unlike a sigmoid's derivative.
# :func:`mla_course.losses.cross_entropy_grad` is this one line. We compare it
# with autograd and with central finite differences, in float64.
import torch
import torch.nn.functional as F

from mla_course import losses

g = torch.Generator().manual_seed(0)
logits = 3 * torch.randn(4, 10, generator=g, dtype=torch.float64)  # (batch, classes)
target = torch.randint(10, (4,), generator=g)

ours = losses.cross_entropy_grad(logits, target)  # softmax(o) - y*, one row per example

o = logits.clone().requires_grad_()
F.cross_entropy(o, target, reduction="sum").backward()  # PyTorch's own loss and autograd

eps = 1e-6
steps = eps * torch.eye(logits.numel(), dtype=torch.float64).view(-1, *logits.shape)


def ce(o):
    return losses.cross_entropy(o, target, "sum")


# central differences, one score at a time
numeric = torch.stack([(ce(logits + e) - ce(logits - e)) / (2 * eps) for e in steps])
numeric = numeric.view_as(logits)

print(f"max |softmax(o) - y* - autograd|            = {(ours - o.grad).abs().max():.2e}")
print(f"max |softmax(o) - y* - finite differences|  = {(ours - numeric).abs().max():.2e}")
print(f"each row sums to zero: max |row sum| = {ours.sum(1).abs().max():.2e}")
assert torch.allclose(ours, o.grad) and torch.allclose(ours, numeric, atol=1e-8)

# %%
# What if the outputs are not probabilities?
# ------------------------------------------
# Plug the raw scores into :math:`-\sum_i y^*_i \log \hat y_i` and the loss is
# undefined for a negative score and negative for a score above 1. Worse, it
# has no minimum: raising the true class's score lowers it without end, and the
# other scores do not enter it at all, so nothing pushes the wrong classes
# down. *Comment être sûr qu'elles le soient ?* The softmax makes the outputs
# positive and sum to one, and couples them: raising one lowers the others.
scores = torch.tensor([[2.0, -1.0, 0.5]])  # class 0 is the true one
probs = losses.softmax(scores)
loss = losses.cross_entropy(scores, torch.tensor([0]))
print(
    f"raw scores as probabilities: loss = {-torch.log(scores[0, 0]):.4f} (negative), "
    f"log of the 2nd score = {torch.log(scores[0, 1])}"
)
print(f"after a softmax: {probs[0].numpy().round(3)}, sum = {probs.sum():.4f}, loss = {loss:.4f}")

# %%
# The figure follows one example as its true-class score :math:`o_c` grows,
# the other nine scores fixed at 0. Left, the loss: :math:`-\log o_c` on raw
# scores falls below zero and on towards :math:`-\infty`; the cross-entropy of
# the softmax tends to 0. Right, the size of the gradient with respect to
# :math:`o_c`, compared with the older choice of a sigmoid per output and a
# squared error (:func:`~mla_course.losses.sigmoid_l2`), whose gradient carries
# a factor :math:`\sigma'(o_c)`: when the output is saturated *on the wrong
# side* (:math:`o_c \ll 0`), the squared error barely learns, the cross-entropy
# learns fastest.
import matplotlib.pyplot as plt

from mla_course import plots

plots.use_style()
oc = torch.linspace(-8, 8, 401, dtype=torch.float64)
batch = torch.zeros(len(oc), 10, dtype=torch.float64)
batch[:, 0] = oc  # (401, 10): the true class is 0
true = torch.zeros(len(oc), dtype=torch.long)

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
positive = oc > 0
ax1.plot(oc[positive], -torch.log(oc[positive]), label=r"$-\log o_c$ (raw scores)")
ax1.plot(oc, losses.cross_entropy(batch, true, "none"), label="softmax + cross-entropy")
ax1.plot(oc, losses.sigmoid_l2(batch, true, "none"), label="sigmoid + squared error")
ax1.axhline(0, color="gray", lw=0.8)
ax1.set(
    xlabel="score of the true class $o_c$",
    ylabel="loss",
    ylim=(-2.5, 8),
    title="The loss of one example",
)
ax1.legend()
ce_grad = losses.cross_entropy_grad(batch, true)[:, 0].abs()
l2_grad = losses.sigmoid_l2_grad(batch, true)[:, 0].abs()
ax2.plot(oc, ce_grad, color=plots.OKABE_ITO[1], label="softmax + cross-entropy")
ax2.plot(oc, l2_grad, color=plots.OKABE_ITO[2], label="sigmoid + squared error")
ax2.set(
    xlabel="score of the true class $o_c$",
    ylabel=r"$|\partial l / \partial o_c|$",
    yscale="log",
    title="How fast that score learns",
)
ax2.legend()
plt.show()
print(
    f"at o_c = -8: |gradient| {ce_grad[0]:.3f} (cross-entropy) vs {l2_grad[0]:.1e} (squared error)"
)

# %%
# Softmax and log together: the stable log-softmax
# ------------------------------------------------
# Computed naively, :math:`\log(e^{o_j} / \sum_k e^{o_k})` fails at large
# scores: in float32 :math:`e^{89}` is already infinite (:math:`\infty/\infty`
# is NaN), and a probability below about :math:`10^{-45}` rounds to 0, whose
# log is :math:`-\infty`. Subtracting the largest score first,
# :math:`\log \hat y_j = o_j - m - \log \sum_k e^{o_k - m}` with
# :math:`m = \max_k o_k`, is the same function with every exponential at most 1.
# This is why PyTorch's models return scores and ``F.cross_entropy`` applies
# ``log_softmax`` itself. We score three classes :math:`(s, 0, -s)` in float32.
s = torch.linspace(1, 120, 239)  # float32, like a network's outputs
three = torch.stack([s, torch.zeros_like(s), -s], dim=1)  # (239, 3)
naive = losses.log_softmax(three, stable=False)
stable = losses.log_softmax(three)
broken = ~torch.isfinite(naive).all(1)
print(f"naive log(softmax) breaks from s = {s[broken][0]:.1f}: {naive[broken][0].tolist()}")
print(f"stable log_softmax at s = {s[-1]:.0f}: {stable[-1].tolist()}")
assert torch.isfinite(stable).all()
assert torch.allclose(stable, torch.log_softmax(three, 1))

fig, ax = plt.subplots(figsize=(6.5, 3.8))
ax.plot(s, -stable[:, 2], lw=4, alpha=0.4, label="stable, true class 3")
ax.plot(s, -naive[:, 2], "--", label="naive, true class 3 (inf once $\\hat y_3$ is 0)")
ax.plot(s, -stable[:, 0], lw=4, alpha=0.4, label="stable, true class 1")
ax.plot(
    s, (-naive[:, 0]).nan_to_num(nan=-20.0), ":", label="naive, true class 1 (NaN drawn at -20)"
)
ax.axvline(s[broken][0], color="gray", lw=0.8)
ax.set(
    xlabel="scale $s$ of the scores $(s, 0, -s)$",
    ylabel="cross-entropy",
    title="Naive softmax-then-log vs log-softmax (float32)",
    ylim=(-30, 260),
)
ax.legend(loc="upper left")
plt.show()

# %%
# Softmax + cross-entropy vs sigmoid + squared error on MNIST
# -----------------------------------------------------------
# The lecture: *[softmax + entropie croisée] donne généralement de meilleurs
# résultats que [sigmoïde + L2]*. Same network (Question 1: 784-120-80-10,
# sigmoid hidden units), same initial weights, same mini-batches, same SGD
# learning rate; only the loss on the 10 output scores changes. Accuracy is
# measured by the largest score in both cases.
from mla_course.experiments import Config, fit_config
from mla_course.utils import get_device, pick

device = get_device()
config = Config(
    activation="sigmoid",
    lr=0.5,
    epochs=pick(full=5, quick_value=1),
    n_train=pick(full=None, quick_value=2000),
    n_test=pick(full=None, quick_value=2000),
)
seeds = range(pick(full=2, quick_value=1))
runs = {
    "softmax + cross-entropy": losses.cross_entropy,
    "sigmoid + squared error": losses.sigmoid_l2,
}
histories = {
    name: [fit_config(config, seed, device, loss_fn=loss_fn)[0] for seed in seeds]
    for name, loss_fn in runs.items()
}
for name, hs in histories.items():
    accs = torch.tensor([h.test_acc[-1] for h in hs]) * 100
    print(
        f"{name:>24}: test accuracy {accs.mean():.2f}% (runs: {', '.join(f'{a:.2f}' for a in accs)})"
    )

# %%
# Training loss (each in its own units, so on separate axes) and test accuracy
# per epoch, mean over seeds.
fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
for i, (ax, name) in enumerate(zip(axes[:2], runs, strict=True)):
    step_loss = torch.tensor([h.step_loss for h in histories[name]]).mean(0)
    window = max(1, len(step_loss) // 100)  # moving average over ~1 % of the steps
    ax.plot(*plots.block_average(step_loss, window), color=plots.OKABE_ITO[i])
    ax.set(xlabel="step", ylabel="training loss", title=name)
for name in runs:
    acc = torch.tensor([h.test_acc for h in histories[name]]).mean(0) * 100
    axes[2].plot(range(1, len(acc) + 1), acc, marker="o", label=name)
axes[2].set(xlabel="epoch", ylabel="test accuracy (%)", title="Same network, same budget")
axes[2].legend()
plt.show()

# %%
# What to remember
# ----------------
# * :math:`\partial l_{CE} / \partial o = \mathrm{softmax}(o) - y^*`: the
#   gradient is the prediction error, with no :math:`\sigma'` factor to vanish.
# * The outputs must be probabilities for the cross-entropy to mean anything:
#   the softmax makes them so and couples the classes.
# * Never compute ``log(softmax(o))``: use ``log_softmax`` (or give the scores
#   to ``F.cross_entropy``), which subtracts the largest score first.
# * With the same network and budget, softmax + cross-entropy trains faster than
#   a sigmoid per output with a squared error.
#
# Further reading
# ---------------
# Section 6.2.2 of the Deep Learning book :cite:p:`goodfellow2016deep` on the
# link between the loss and the output units, and chapter 3 of Nielsen's book
# :cite:p:`nielsen2015neural` on the learning slowdown of the squared error.

# sphinx_gallery_thumbnail_number = 1
