"""
Question 1: a three-layer MLP on MNIST
======================================

The lecture's first exercise (*Question 1*), in its own words: starting from the
`PyTorch optimisation tutorial
<https://pytorch.org/tutorials/beginner/basics/optimization_tutorial.html>`_,
write code that loads MNIST, shows the examples of one batch, defines a
three-layer MLP with hidden layers of 120 and 80 units, a cross-entropy loss and
sigmoid activations, trains it for 2 epochs on the training split and
evaluates it.

We first do exactly that with the tutorial's hyper-parameters (mini-batches of
64, plain SGD with a learning rate of :math:`10^{-3}`) and report what they
give. Then we ask why, and answer with a learning-rate sweep over several
seeds. The answers to *why* are the subject of the next chapters.
"""

# %%
# Load MNIST and look at one batch
# --------------------------------
# :func:`~mla_course.data.make_loader` wraps ``torchvision.datasets.MNIST`` in a
# ``DataLoader``, as the tutorial does. Pixels are scaled to [0, 1], then
# centred and scaled with the training-set mean (0.1307) and standard deviation
# (0.3081). Set ``MLA_DATA_DIR`` to a folder holding the four MNIST files to
# work offline.
import torch

from mla_course import data, plots
from mla_course.utils import get_device, pick

plots.use_style()
device = get_device()
limit = pick(full=None, quick_value=2000)  # quick mode: the first 2,000 images only
train_loader = data.make_loader(
    "mnist", "train", batch_size=64, limit=limit, generator=torch.Generator().manual_seed(0)
)
print(f"{len(train_loader.dataset)} training images in {len(train_loader)} batches of 64")

images, labels = next(iter(train_loader))
print("one batch:", tuple(images.shape), "images,", tuple(labels.shape), "labels")
fig = plots.show_images(
    images[:32],
    [f"label {y}" for y in labels[:32].tolist()],
    ncols=8,
    suptitle="The first 32 examples of one training batch",
)

# %%
# The network
# -----------
# Three layers of weights: 784 inputs, hidden layers of 120 and 80 sigmoid units,
# 10 output scores. The softmax is not in the model:
# ``torch.nn.functional.cross_entropy`` applies it, as ``log_softmax``, inside
# the loss.
from mla_course.models import MLP

torch.manual_seed(0)
model = MLP([784, 120, 80, 10], activation="sigmoid").to(device)
print(model)
print(f"{sum(p.numel() for p in model.parameters()):,} parameters")

# %%
# Train for 2 epochs with the tutorial's settings
# -----------------------------------------------
# :func:`~mla_course.train.train_epoch` and :func:`~mla_course.train.evaluate`
# are the tutorial's ``train_loop`` and ``test_loop``: forward, loss, backward,
# step; then loss and accuracy on the test split. They accept the
# ``DataLoader`` above, but here we feed them the fast path: the whole split
# is one tensor on the device and :func:`~mla_course.data.iterate_batches`
# slices mini-batches out of it. The batches, and so the numbers, are the same
# as with the ``DataLoader`` (the package's tests check it); the training is
# several times faster because no image is converted one by one.
import time

from mla_course.train import evaluate, train_epoch

X_train, y_train = data.load_tensors("mnist", "train", device=device, limit=limit)
X_test, y_test = data.load_tensors("mnist", "test", device=device, limit=limit)
epochs = pick(full=2, quick_value=1)
optimizer = torch.optim.SGD(model.parameters(), lr=1e-3)
order = torch.Generator().manual_seed(0)  # the order of the mini-batches
start = time.perf_counter()
step_loss = []
for epoch in range(epochs):
    step_loss += train_epoch(
        model, data.iterate_batches(X_train, y_train, 64, generator=order), optimizer
    )
    test_loss, test_acc = evaluate(model, data.iterate_batches(X_test, y_test, 1000, shuffle=False))
    print(f"epoch {epoch + 1}: test loss {test_loss:.4f}, test accuracy {100 * test_acc:.2f}%")
print(f"training time: {time.perf_counter() - start:.1f} s on {device}")
tutorial_acc = test_acc

# %%
# The loss barely moves. With a learning rate of :math:`10^{-3}` and sigmoid
# units, each of the steps above changes the weights by a tiny amount: the
# gradient reaching the first layers is small (each sigmoid multiplies it by
# :math:`\sigma'(z) \le 1/4`, see :ref:`the chapter on gradient dispersion
# <sphx_glr_auto_examples_01_architecture_plot_01_gradient_dispersion.py>`).
import math

import matplotlib.pyplot as plt

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(step_loss, lw=0.8)
ax.set(
    xlabel="step (mini-batch of 64)",
    ylabel="training loss (cross-entropy)",
    title=f"SGD, learning rate 1e-3: test accuracy {100 * tutorial_acc:.1f}% after {epochs} epoch(s)",
)
ax.axhline(math.log(10), color="gray", ls="--", lw=1, label="log 10: the loss of a uniform guess")
ax.legend(loc="upper right")
plt.show()

# %%
# How does the learning rate change this?
# ---------------------------------------
# Same network, same 2 epochs, learning rates from :math:`10^{-3}` to 10, each
# over several seeds (initial weights and batch order). This uses the package's
# fast path: the whole split lives on the device as one tensor, and
# :func:`~mla_course.experiments.sweep` returns mean ± standard deviation.
from mla_course.experiments import Config, sweep

lrs = pick(full=[1e-3, 1e-2, 0.1, 0.5, 1.0, 3.0, 10.0], quick_value=[1e-3, 0.1, 1.0])
seeds = range(pick(full=3, quick_value=1))
base = Config(
    activation="sigmoid", optimizer="sgd", batch_size=64, epochs=epochs, n_train=limit, n_test=limit
)
table = sweep({f"lr={lr:g}": base.replace(lr=lr) for lr in lrs}, seeds=seeds, device=device)
table

# %%
# Too small a step and the network has not left its starting point after 2
# epochs; a step of the order of 1 trains well; beyond that, training becomes
# unstable. The lecture's advice is to read the loss curve, which the next
# figure draws for each learning rate.
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
means = [r.mean("test_acc") * 100 for r in table.values()]
stds = [r.std("test_acc") * 100 for r in table.values()]
ax1.errorbar(lrs, means, yerr=stds, marker="o", capsize=3)
ax1.set(
    xscale="log",
    xlabel="learning rate",
    ylabel="test accuracy (%)",
    title=f"After {epochs} epoch(s), mean ± std over {len(seeds)} seed(s)",
)
for label, result in table.items():
    mean, _ = result.curve("step_loss")
    window = max(1, len(mean) // 50)  # a moving average makes the trend readable
    ax2.plot(*plots.block_average(mean, window), label=label)
ax2.set(xlabel="step", ylabel="training loss", yscale="log", title="Training loss (moving average)")
ax2.legend(ncols=2)
plt.show()

# %%
# Evaluate the best network
# -------------------------
# We retrain the best learning rate of the sweep with seed 0 and look at its
# errors: the confusion matrix (rows: true digit) and some misclassified images.
from mla_course.experiments import run
from mla_course.train import confusion_matrix, predict

best = table.best("test_acc")
history, model = run(table[best].config, seed=0, device=device, return_model=True)
predicted = predict(model, X_test).argmax(1)
accuracy = (predicted == y_test).float().mean().item()
print(
    f"best learning rate: {best}; test accuracy {100 * accuracy:.2f}% "
    f"(with the tutorial's lr=1e-3: {100 * tutorial_acc:.2f}%)"
)
plots.plot_confusion(
    confusion_matrix(y_test, predicted),
    data.classes("mnist"),
    title=f"Confusion matrix on the test split ({best})",
)
plt.show()

# %%
wrong = (predicted != y_test).nonzero().flatten()[:16]
fig = plots.show_images(
    X_test[wrong],
    [f"{t} → {p}" for t, p in zip(y_test[wrong].tolist(), predicted[wrong].tolist(), strict=True)],
    suptitle="Misclassified test digits (true → predicted)",
)
plt.show()

# %%
# What to remember
# ----------------
# * With the tutorial's learning rate, 2 epochs of SGD leave a sigmoid MLP close
#   to where it started: the hyper-parameters of a recipe are not universal.
# * The learning rate is the first hyper-parameter to tune; read the loss curve.
# * Why sigmoid networks learn slowly, and what helps (cross-entropy, ReLU,
#   initialisation, momentum, adaptive steps, batch norm), are the next pages.
#
# Further reading
# ---------------
# The PyTorch tutorial this exercise starts from, LeCun et al. on MNIST
# :cite:p:`lecun1998gradient`, and chapter 6 of the Deep Learning book
# :cite:p:`goodfellow2016deep`.

# sphinx_gallery_thumbnail_number = 4
