"""
Comparing the optimisers on MNIST
=================================

*La plupart du temps, une simple descente de gradient ne suffit pas. Quelle(s)
solution(s) ?* The previous pages took the optimisers apart one by one; here
they compete on the same task, the network of Question 1 (784-120-80-10,
sigmoid) on MNIST. A fair comparison gives each optimiser its own step size:
each gets a small grid of three, and every configuration is trained with
several seeds (initial weights and batch order), so that the table reports a
mean and a standard deviation rather than one lucky run.

To keep the page to a couple of minutes on a CPU we train on the first 20,000
training images for 3 epochs; every run is evaluated on the full test split.
The step size is chosen on the *training* loss (the quantity the optimisers
minimise), never on the test set.
"""

# %%
# The sweep
# ---------
# All :math:`6 \times 3` configurations, each over the same seeds. The batched
# engine of :mod:`mla_course.experiments` trains them together and caches the
# results.
import math

import matplotlib.pyplot as plt

from mla_course import plots
from mla_course.experiments import Config, Table, sweep
from mla_course.utils import pick

plots.use_style()
base = Config(
    n_train=pick(full=20_000, quick_value=2_000),
    n_test=pick(full=None, quick_value=2_000),
    epochs=pick(full=3, quick_value=1),
)
grids = {  # (optimizer, extra arguments): step sizes around the usual values
    ("sgd", ()): [0.3, 1.0, 3.0],
    ("momentum", (("momentum", 0.9),)): [0.03, 0.1, 0.3],
    ("nesterov", (("momentum", 0.9),)): [0.03, 0.1, 0.3],
    ("adagrad", ()): [0.01, 0.03, 0.1],
    ("rmsprop", ()): [1e-3, 3e-3, 1e-2],
    ("adam", ()): [1e-3, 3e-3, 1e-2],
}
if pick(full=False, quick_value=True):
    grids = {key: lrs[1:2] for key, lrs in grids.items()}  # quick mode: the middle value only
configs = {
    f"{name} ε={lr:g}": base.replace(optimizer=name, lr=lr, optimizer_kwargs=kwargs)
    for (name, kwargs), lrs in grids.items()
    for lr in lrs
}
seeds = range(pick(full=3, quick_value=1))
table = sweep(configs, seeds=seeds)
table

# %%
# Sensitivity to the step size
# ----------------------------
# The final training loss of each configuration (mean over seeds, bars: one
# standard deviation). Every method has its sweet spot, and a step three times
# too large or too small costs a lot. SGD's best step is larger than that of
# its momentum versions, whose velocity adds up about :math:`1/(1-\alpha) = 10`
# gradients (the best steps are printed below the figure).
fig, ax = plt.subplots(figsize=(7, 4))
best = {}
for (name, _), lrs in grids.items():
    results = [table[f"{name} ε={lr:g}"] for lr in lrs]
    means = [r.mean("train_loss") for r in results]
    ax.errorbar(
        lrs, means, yerr=[r.std("train_loss") for r in results], marker="o", capsize=3, label=name
    )
    finite = {lr: m for lr, m in zip(lrs, means, strict=True) if not math.isnan(m)}
    lr = min(finite, key=finite.get)
    best[name] = f"{name} ε={lr:g}"
    edge = " (at the edge of its grid)" if len(lrs) > 1 and lr in (lrs[0], lrs[-1]) else ""
    print(f"{name:>8}: best step size {lr:g}{edge}")
ax.set(
    xscale="log",
    yscale="log",
    xlabel="step size ε",
    ylabel="final training loss",
    title=f"After {base.epochs} epoch(s), mean ± std over {len(seeds)} seed(s)",
)
ax.legend(ncols=2)
plt.show()

# %%
# Each optimiser at its best step size
# ------------------------------------
# The best step size of each grid, by training loss; the test accuracy is
# reported alongside, mean ± standard deviation over the seeds.
summary = Table({label: table[label] for label in best.values()})
ranking = sorted(summary, key=lambda label: summary[label].mean("train_loss"))
print("ranked by training loss:", " < ".join(ranking))
best_acc = [100 * r.mean("test_acc") for r in summary.values()]
print(f"best test accuracies span {max(best_acc) - min(best_acc):.2f} points across optimisers")
for (name, _), lrs in grids.items():
    accs = [100 * table[f"{name} ε={lr:g}"].mean("test_acc") for lr in lrs]
    print(f"{name:>8}: test accuracy spans {max(accs) - min(accs):.2f} points across its grid")
summary

# %%
plots.plot_table_curves(
    summary, metrics=("train_loss", "test_acc"), log_band=True, figsize=(11, 3.8)
)
plt.show()

# %%
# Read the table with its standard deviations: two optimisers whose means
# differ by less than about two standard deviations are not separated by this
# experiment. Tuned, the methods end up close to one another on this small
# network; what separates them more is how much tuning they need (the previous
# figure) and how fast they start (the curves). The ranking depends on the
# budget (epochs, grid, network) and is not a general law: Wilson et al. find
# that adaptive methods can generalise worse than SGD with momentum on larger
# problems :cite:p:`wilson2017marginal`.
#
# What to remember
# ----------------
# * Compare optimisers at their own tuned step size, over several seeds, and
#   choose the step size on the training (or a validation) loss, not on the
#   test set.
# * The step size matters more than the choice of optimiser: each method's
#   results vary more across its grid than the best results vary across
#   methods (compare the two tables).
#
# Further reading
# ---------------
# Momentum :cite:p:`polyak1964some,sutskever2013importance`, AdaGrad
# :cite:p:`duchi2011adaptive`, RMSProp :cite:p:`hinton2012rmsprop`, Adam
# :cite:p:`kingma2015adam`, and chapter 8 of the Deep Learning book
# :cite:p:`goodfellow2016deep`.

# sphinx_gallery_thumbnail_number = 2
