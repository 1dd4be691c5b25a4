"""
Adam's bias correction
======================

Adam keeps two moving averages of the gradient, both started at zero: the
first moment :math:`s \\leftarrow \\rho_1 s + (1-\\rho_1) g` (a momentum) and the
second :math:`r \\leftarrow \\rho_2 r + (1-\\rho_2) g \\odot g` (as in RMSProp). The
algorithm then divides them by :math:`1-\\rho_1^t` and :math:`1-\\rho_2^t`: *corrige
les biais d'initialisation*. The lecture asks: *quelle conséquence dans les
premières itérations ?*

We watch the moment estimates against the true moments on a synthetic stream
of gradients, compute the step sizes with and without the correction for
several :math:`\\rho_2`, then train the network of Question 1 on MNIST both ways
(the first 10,000 training images, 1 epoch: the correction only matters early).
"""

# %%
# The moments start biased towards zero
# -------------------------------------
# Gradients :math:`g_t \sim \mathcal{N}(\mu, \sigma^2)`, independently for many
# coordinates, fed to :class:`~mla_course.optim.Adam` by hand. After :math:`t`
# steps, :math:`\mathbb{E}[s_t] = (1-\rho_1^t)\,\mu` and
# :math:`\mathbb{E}[r_t] = (1-\rho_2^t)(\mu^2+\sigma^2)`: the raw averages are too
# small by exactly the factor that the correction divides out.
import matplotlib.pyplot as plt
import torch

from mla_course import optim, plots
from mla_course.utils import pick

plots.use_style()
mu, sigma, coords = 1.0, 3.0, 10_000
T = pick(full=3000, quick_value=500)


def adam_stream(beta2, bias_correction, steps, seed=0):
    """Feed the same random gradients to Adam; return s, r (means over coordinates) and |step|."""
    g = torch.Generator().manual_seed(seed)
    theta = torch.zeros(coords, requires_grad=True)
    opt = optim.Adam([theta], lr=1.0, betas=(0.9, beta2), bias_correction=bias_correction)
    s, r, step = [], [], []
    for _ in range(steps):
        theta.grad = mu + sigma * torch.randn(coords, generator=g)
        before = theta.detach().clone()
        opt.step()
        s.append(opt.state[theta]["s"].mean().item())
        r.append(opt.state[theta]["r"].mean().item())
        step.append((theta.detach() - before).abs().mean().item())  # |Δθ| / lr, since lr = 1
    return torch.tensor(s), torch.tensor(r), torch.tensor(step)


t = torch.arange(1, T + 1, dtype=torch.float64)
s, r, _ = adam_stream(0.999, True, T)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
ax1.semilogx(t, s, label=r"$s_t$ (raw)")
ax1.semilogx(t, s / (1 - 0.9**t), label=r"$\hat s_t = s_t/(1-\rho_1^t)$")
ax1.axhline(mu, color="k", ls=":", label=r"true $\mathbb{E}[g] = \mu$")
ax1.set(xlabel="step t", ylabel="mean over coordinates", title=r"First moment ($\rho_1 = 0.9$)")
ax2.semilogx(t, r, label=r"$r_t$ (raw)")
ax2.semilogx(t, r / (1 - 0.999**t), label=r"$\hat r_t = r_t/(1-\rho_2^t)$")
ax2.axhline(mu**2 + sigma**2, color="k", ls=":", label=r"true $\mathbb{E}[g^2]$")
ax2.set(xlabel="step t", title=r"Second moment ($\rho_2 = 0.999$)")
for ax in (ax1, ax2):
    ax.legend()
plt.show()
for k in (1, 10, 100, 1000):
    if k <= T:
        print(
            f"t = {k:4d}: r_t / E[g^2] = {r[k - 1] / (mu**2 + sigma**2):.3f}, "
            f"corrected {r[k - 1] / (1 - 0.999**k) / (mu**2 + sigma**2):.3f}"
        )

# %%
# Steps too large at the start
# ----------------------------
# The step is :math:`\epsilon\, s/\sqrt{r}` elementwise. Without the correction,
# the numerator is too small by :math:`1-\rho_1^t` but the denominator by
# :math:`\sqrt{1-\rho_2^t}`, which is much smaller when :math:`\rho_2` is close to
# 1: the raw step is larger than the corrected one by
# :math:`(1-\rho_1^t)/\sqrt{1-\rho_2^t}` (dotted), up to several times, and for
# hundreds or thousands of steps. Both runs see the same gradients.
fig, ax = plt.subplots(figsize=(7, 4))
for beta2 in (0.99, 0.999, 0.9999):
    *_, corrected = adam_stream(beta2, True, T)
    *_, raw = adam_stream(beta2, False, T)
    ratio = raw / corrected
    theory = (1 - 0.9**t) / torch.sqrt(1 - beta2**t)
    torch.testing.assert_close(ratio, theory.float(), rtol=1e-3, atol=0)  # same maths
    (line,) = ax.loglog(t, raw, label=f"no correction, ρ2={beta2}")
    ax.loglog(t, corrected, color=line.get_color(), lw=3, alpha=0.35)
    ax.loglog(t, corrected * theory, "k:", lw=0.8)
    peak = int(ratio.argmax())
    above = int((ratio > 2).sum())
    print(
        f"rho2 = {beta2}: the raw step is up to {ratio.max():.1f} x the corrected one "
        f"(at t = {peak + 1}); more than 2 x for {above} of the first {T} steps"
    )
ax.plot([], [], color="gray", lw=3, alpha=0.35, label="with correction (each ρ2)")
print(
    f"corrected step at the end: {corrected[-100:].mean():.3f} x lr; "
    f"|mu| / sqrt(mu^2 + sigma^2) = {abs(mu) / (mu**2 + sigma**2) ** 0.5:.3f}"
)
ax.set(
    xlabel="step t",
    ylabel=r"mean $|\Delta\theta| / \epsilon$",
    title="Step size with (thick, pale) and without (thin) bias correction",
)
ax.legend()
plt.show()

# %%
# With the correction the step is :math:`\epsilon\,\hat s/\sqrt{\hat r}` from the
# first iteration on: :math:`\epsilon` at :math:`t = 1`, then settling near
# :math:`\epsilon\,|\mu|/\sqrt{\mu^2+\sigma^2}` (the signal-to-noise ratio of the
# gradient), whatever :math:`\rho_2`. That is what makes :math:`\epsilon` an
# interpretable step size. Without it, a larger :math:`\rho_2` (a longer memory,
# which the paper recommends for sparse gradients) means larger steps for longer.
#
# What goes wrong on MNIST
# ------------------------
# The network of Question 1 with Adam, with and without the correction, for
# the three :math:`\rho_2` and two step sizes.
from mla_course.experiments import Config, sweep

base = Config(
    optimizer="adam",
    n_train=pick(full=10_000, quick_value=2_000),
    n_test=pick(full=None, quick_value=2_000),
    epochs=1,
)
runs = [
    (lr, beta2, bc)
    for lr in (1e-3, 1e-2)
    for beta2 in (0.99, 0.999, 0.9999)
    for bc in (True, False)
]
configs = {
    f"ε={lr:g}, ρ2={beta2}, {'corrected' if bc else 'raw'}": base.replace(
        lr=lr, optimizer_kwargs={"betas": (0.9, beta2), "bias_correction": bc}
    )
    for lr, beta2, bc in runs
}
table = sweep(configs, seeds=range(pick(full=2, quick_value=1)))
table

# %%
# The first steps of the runs with :math:`\epsilon = 10^{-2}`:
colours = dict(zip((0.99, 0.999, 0.9999), plots.OKABE_ITO, strict=False))
fig, ax = plt.subplots(figsize=(7, 4))
for (lr, beta2, bc), result in zip(runs, table.values(), strict=True):
    if lr == 1e-2:
        mean, _ = result.curve("step_loss")
        ax.plot(
            *plots.block_average(mean, 5),  # averages of 5 steps
            "-" if bc else "--",
            color=colours[beta2],
            lw=2.5 if bc else 1.5,
            alpha=0.5 if bc else 1,
            label=f"ρ2={beta2}, {'corrected' if bc else 'raw'}",
        )
ax.set(
    xlabel="step",
    ylabel="training loss (mean of 5 steps)",
    yscale="log",
    title="Adam, ε = 0.01: solid corrected, dashed raw",
)
ax.legend(ncols=2)
plt.show()

# %%
# With the correction the three :math:`\rho_2` give nearly the same run. Without
# it, the early steps are larger than :math:`\epsilon` by the factors printed
# above. Whether that hurts depends on the margin: at :math:`\epsilon = 10^{-3}`
# the larger steps merely speed up the start, at :math:`\epsilon = 10^{-2}` they
# push the network into a bad region, the more so the closer :math:`\rho_2` is
# to 1. Compare the rows of the table.
#
# What to remember
# ----------------
# * Moving averages started at zero are biased towards zero for about
#   :math:`1/(1-\rho)` steps; dividing by :math:`1-\rho^t` removes the bias exactly.
# * The second moment's bias is the larger: without correction, the first
#   steps are :math:`(1-\rho_1^t)/\sqrt{1-\rho_2^t}` times too large, several
#   times for :math:`\rho_2 = 0.999` and more as :math:`\rho_2` approaches 1.
# * With the correction, :math:`\epsilon` is the size of the step from the first
#   iteration on.
#
# Further reading
# ---------------
# Kingma and Ba, section 3 on the initialisation bias
# :cite:p:`kingma2015adam`; chapter 8.5 of the Deep Learning book
# :cite:p:`goodfellow2016deep`.

# sphinx_gallery_thumbnail_number = 2
