"""
Adam's bias correction
======================

Adam keeps two moving averages of the gradient, both started at zero: the
first moment :math:`s \\leftarrow \\rho_1 s + (1-\\rho_1) g` (a momentum) and
the second :math:`r \\leftarrow \\rho_2 r + (1-\\rho_2) g \\odot g` (as in
RMSProp). It then divides them by :math:`1-\\rho_1^t` and
:math:`1-\\rho_2^t`: *corrige les biais d'initialisation*. The lecture asks:
*quelle conséquence dans les premières itérations ?*

We read the update rule, watch the moment estimates against the true moments
on a synthetic stream of gradients, compute the step sizes with and without
the correction, then train the network of Question 1 on MNIST both ways (the
first 10,000 training images, 1 epoch: the correction only matters early).

The lecture's symbols, the book's names and torch's arguments are set side by
side on the :ref:`notation` page; French terms are in the :ref:`glossary`.
"""

# %%
# The update rule
# ---------------
# :func:`~mla_course.optim.adam_update` is the one copy of Adam in the
# package: :class:`~mla_course.optim.Adam` calls it, and so does the batched
# engine that trains the sweeps below.
import itertools

import matplotlib.pyplot as plt
import torch

from mla_course import optim, plots
from mla_course.claims import check, check_equivalent, check_order
from mla_course.settings import generator, pick
from mla_course.source import show_source

plots.use_style()
show_source(optim.adam_update)

# %%
# The moments start biased towards zero
# -------------------------------------
# Gradients :math:`g_t \sim \mathcal{N}(\mu, \sigma^2)`, independently for
# many coordinates, fed to :class:`~mla_course.optim.Adam` by hand. After
# :math:`t` steps, :math:`\mathbb{E}[s_t] = (1-\rho_1^t)\,\mu` and
# :math:`\mathbb{E}[r_t] = (1-\rho_2^t)(\mu^2+\sigma^2)`: the raw averages
# are too small by exactly the factor that the correction divides out.
mu, sigma, coords = 1.0, 3.0, 10_000
T = pick(full=3000, quick_value=500)


def adam_stream(betas, correct, steps, seed=0):
    """Mean s, r and |step| over the coordinates, for Adam with lr = 1."""
    g = generator(seed)
    theta = torch.zeros(coords, requires_grad=True)
    opt = optim.Adam([theta], lr=1.0, betas=betas, bias_correction=correct)
    s, r, step = [], [], []
    for _ in range(steps):
        theta.grad = mu + sigma * torch.randn(coords, generator=g)
        before = theta.detach().clone()
        opt.step()
        s.append(opt.state[theta]["s"].mean().item())
        r.append(opt.state[theta]["r"].mean().item())
        step.append((theta.detach() - before).abs().mean().item())
    return torch.tensor(s), torch.tensor(r), torch.tensor(step)


# %%
# The raw and corrected moments, for :math:`\rho_1 = 0.9` and
# :math:`\rho_2 = 0.999`:
t = torch.arange(1, T + 1, dtype=torch.float64)
s, r, _ = adam_stream((0.9, 0.999), True, T)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
ax1.semilogx(t, s, label=r"$s_t$ (raw)")
ax1.semilogx(t, s / (1 - 0.9**t), label=r"$\hat s_t = s_t/(1-\rho_1^t)$")
ax1.axhline(mu, color="k", ls=":", label=r"true $\mathbb{E}[g] = \mu$")
ax1.set(xlabel="step t", ylabel="mean over coordinates")
ax1.set_title(r"First moment ($\rho_1 = 0.9$)")
ax2.semilogx(t, r, label=r"$r_t$ (raw)")
ax2.semilogx(t, r / (1 - 0.999**t), label=r"$\hat r_t = r_t/(1-\rho_2^t)$")
ax2.axhline(mu**2 + sigma**2, color="k", ls=":", label=r"true $E[g^2]$")
ax2.set(xlabel="step t", title=r"Second moment ($\rho_2 = 0.999$)")
for ax in (ax1, ax2):
    ax.legend()
plt.show()
ks = [k for k in (1, 10, 100, 1000) if k <= T]
raw = torch.stack([r[k - 1] / (mu**2 + sigma**2) for k in ks])
bias = torch.tensor([1 - 0.999**k for k in ks])
print("t:", ks)
print("raw r_t / E[g^2]:", ", ".join(f"{v:.4f}" for v in raw.tolist()))
print("1 - rho2^t:      ", ", ".join(f"{v:.4f}" for v in bias.tolist()))

# %%
# Steps too large at the start
# ----------------------------
# The step is :math:`\epsilon\, s/\sqrt{r}` elementwise. Without the
# correction, the numerator is too small by :math:`1-\rho_1^t` but the
# denominator by :math:`\sqrt{1-\rho_2^t}`, which is much smaller when
# :math:`\rho_2` is close to 1: the raw step is larger than the corrected one
# by :math:`(1-\rho_1^t)/\sqrt{1-\rho_2^t}` (dotted), and for many steps.
# Both runs see the same gradients.
fig, ax = plt.subplots(figsize=(7, 4))
peaks, error = {}, 0.0
for beta2 in (0.99, 0.999, 0.9999):
    *_, corrected = adam_stream((0.9, beta2), True, T)
    *_, raw = adam_stream((0.9, beta2), False, T)
    ratio, theory = raw / corrected, (1 - 0.9**t) / torch.sqrt(1 - beta2**t)
    error = max(error, ((ratio - theory) / theory).abs().max().item())
    (line,) = ax.loglog(t, raw, label=f"no correction, ρ2={beta2}")
    ax.loglog(t, corrected, color=line.get_color(), lw=3, alpha=0.35)
    ax.loglog(t, corrected * theory, "k:", lw=0.8)
    peaks[beta2] = ratio.max().item()
ax.plot([], [], color="gray", lw=3, alpha=0.35, label="corrected (each ρ2)")
ax.set(xlabel="step t", ylabel=r"mean $|\Delta\theta| / \epsilon$")
ax.set_title("Step size with (thick, pale) and without (thin) correction")
ax.legend()
plt.show()

# %%
# With the correction the step is :math:`\epsilon\,\hat s/\sqrt{\hat r}` from
# the first iteration on: :math:`\epsilon` at :math:`t = 1`, then settling
# near :math:`\epsilon\,|\mu|/\sqrt{\mu^2+\sigma^2}` (the signal-to-noise
# ratio of the gradient), whatever :math:`\rho_2`. That is what makes
# :math:`\epsilon` an interpretable step size. Without it, a larger
# :math:`\rho_2` (a longer memory, which the paper recommends for sparse
# gradients) means larger steps for longer. All of this is algebra on one
# stream of gradients (the book's tests check it); the numbers:
snr = abs(mu) / (mu**2 + sigma**2) ** 0.5
end = corrected[-100:].mean().item()
print(f"largest gap between raw / corrected and the formula: {error:.1e}")
print("peak of raw / corrected:", {b: round(v, 1) for b, v in peaks.items()})
print(f"corrected step at the end {end:.3f} x lr; signal-to-noise {snr:.3f}")

# %%
# What goes wrong on MNIST
# ------------------------
# The network of Question 1 with Adam, with and without the correction, for
# the three :math:`\rho_2` and two step sizes, over 5 seeds.
from mla_course.config import Config
from mla_course.runs import sweep

base = Config(
    optimizer="adam",
    n_train=pick(full=10_000, quick_value=2_000),
    n_test=pick(full=None, quick_value=2_000),
    epochs=1,
)
kinds = {"corrected": True, "raw": False}
runs = list(itertools.product((1e-3, 1e-2), (0.99, 0.999, 0.9999), kinds))
configs = {
    f"ε={lr:g}, ρ2={b2}, {kind}": base.replace(
        lr=lr,
        optimizer_kwargs={"betas": (0.9, b2), "bias_correction": kinds[kind]},
    )
    for lr, b2, kind in runs
}
table = sweep(configs, seeds=range(5))
table

# %%
# The first steps of the runs with :math:`\epsilon = 10^{-2}`, mean over the
# seeds:
colours = dict(zip((0.99, 0.999, 0.9999), plots.OKABE_ITO, strict=False))
fig, ax = plt.subplots(figsize=(7, 4))
for (lr, beta2, kind), result in zip(runs, table.values(), strict=True):
    if lr == 1e-2:
        mean, _ = result.curve("step_loss")
        style = {"ls": "-", "lw": 2.5, "alpha": 0.5}
        if kind == "raw":
            style = {"ls": "--", "lw": 1.5}
        ax.plot(*plots.block_average(mean, 5), color=colours[beta2], **style)
        ax.lines[-1].set_label(f"ρ2={beta2}, {kind}")
ax.set(xlabel="step", ylabel="training loss (mean of 5 steps)", yscale="log")
ax.set_title("Adam, ε = 0.01: solid corrected, dashed raw")
ax.legend(ncols=2)
plt.show()

# %%
# With the correction, :math:`\rho_2 = 0.99` and :math:`0.9999` end within 3
# points of each other. Without it, the early steps are larger than
# :math:`\epsilon` by the factors printed above. Whether that hurts depends
# on the margin: at :math:`\epsilon = 10^{-3}` the larger steps merely speed
# up the start (after one epoch the raw run is ahead, for
# :math:`\rho_2 = 0.999`), at :math:`\epsilon = 10^{-2}` they push the
# network into a bad region, the more so the closer :math:`\rho_2` is to 1,
# up to a network left at chance. The checks:
orders = [  # (better, worse, full_only) on the test accuracy after 1 epoch
    ("ε=0.001, ρ2=0.999, raw", "ε=0.001, ρ2=0.999, corrected", False),
    ("ε=0.01, ρ2=0.999, corrected", "ε=0.01, ρ2=0.999, raw", True),
    ("ε=0.01, ρ2=0.99, raw", "ε=0.01, ρ2=0.999, raw", False),
    ("ε=0.01, ρ2=0.999, raw", "ε=0.01, ρ2=0.9999, raw", False),
]
for better, worse, full in orders:  # full: too noisy on 2,000 images
    check_order(
        f"{better} beats {worse}", table[better], table[worse], full_only=full
    )
at_chance = max(table["ε=0.01, ρ2=0.9999, raw"].values("test_acc"))
check(
    "at ε = 0.01, raw ρ2 = 0.9999 leaves every seed near chance (< 15 %)",
    at_chance < 0.15,
    measured=f"best seed: test accuracy {100 * at_chance:.1f} %",
)
for lr in ("0.001", "0.01"):
    check_equivalent(
        f"corrected, ρ2 = 0.99 and 0.9999 end within 3 points (ε={lr})",
        table[f"ε={lr}, ρ2=0.99, corrected"],
        table[f"ε={lr}, ρ2=0.9999, corrected"],
        margin=3,
    )

# %%
# What to remember
# ----------------
# * Moving averages started at zero are biased towards zero for about
#   :math:`1/(1-\rho)` steps; dividing by :math:`1-\rho^t` removes the bias
#   exactly.
# * The second moment's bias is the larger: without correction, the first
#   steps are :math:`(1-\rho_1^t)/\sqrt{1-\rho_2^t}` times too large, several
#   times for :math:`\rho_2 = 0.999` and more as :math:`\rho_2` approaches 1.
# * With the correction, :math:`\epsilon` is the size of the step from the
#   first iteration on, whatever :math:`\rho_2`.
#
# Further reading
# ---------------
# Kingma and Ba, section 3 on the initialisation bias
# :cite:p:`kingma2015adam`; chapter 8.5 of the Deep Learning book
# :cite:p:`goodfellow2016deep`.
#
# Exercise
# --------
#
# **Exercise.** Predict first: with :math:`\rho_1 = 0` (no momentum, so
# Adam becomes RMSProp with a bias correction) and :math:`\rho_2 = 0.999`, by
# how much is the first raw step larger than the corrected one? Then run
# ``adam_stream((0.0, 0.999), ...)`` with and without the correction for a
# few steps and compare the first step.

# %% [solution]
# **Solution.** At :math:`t = 1` the corrected step is :math:`\epsilon`
# times :math:`\hat s/\sqrt{\hat r} = g/|g|`, and the raw one
# :math:`(1-\rho_1)/\sqrt{1-\rho_2}` times that: :math:`1/\sqrt{0.001}
# \approx 31.6` for :math:`\rho_1 = 0`, against :math:`0.1/\sqrt{0.001}
# \approx 3.2` with :math:`\rho_1 = 0.9`: the first moment's own bias,
# :math:`1-\rho_1`, hides a factor 10 of the problem.
*_, step_corrected = adam_stream((0.0, 0.999), True, 5)
*_, step_raw = adam_stream((0.0, 0.999), False, 5)
first = (step_raw[0] / step_corrected[0]).item()
theory = 1 / (1 - 0.999) ** 0.5
print(f"first raw / corrected step {first:.2f}, 1/sqrt(0.001) = {theory:.2f}")

# sphinx_gallery_thumbnail_number = 2
