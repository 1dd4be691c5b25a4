"""mla-course: the code behind the course book "C5. Apprentissage des réseaux profonds".

The package is layered: the gallery pages on top, orchestration in the middle, and
at the bottom the lesson modules, which import nothing else of ours.

Lessons (each algorithm once, shown on the page that teaches it)
-----------------------------------------------------------------
optim
    SGD, momentum, Nesterov, AdaGrad, RMSProp, Adam: one pure update function each.
layers
    Batch normalisation, AdaBN and dropout, from scratch.
init
    Weight initialisation schemes (LeCun, Glorot, He, ...).
losses
    Cross-entropy and squared error, with their gradients.
augment
    Data augmentation: shifts and rotations, noise, cutout, mixup, CutMix.
penalties
    The L1 and L2 norm penalties.
models
    Multi-layer perceptrons with a choice of activation.
surfaces
    Test functions and the quadratic theory of chapter 2.

Orchestration
-------------
data
    MNIST and Fashion-MNIST, checked against the originals' MD5.
config
    ``Config``: everything that defines a run except the seed, checked when built.
train
    The plain training loop a student can read, ``fit`` that records a history, and
    early stopping.
engine
    Many networks trained at once with stacked weights, by the update functions of ``optim``.
runs
    The ways to train: ``sweep`` (a results table) and ``train_network`` (one network).
tables
    Results over seeds, summarised as mean ± std, never averaging a diverged run.
cache
    Results keyed by everything that produced them.
claims
    The checks that back every number, order and trend the book states.
diagnostics, plots, source, bench, settings
    Gradient and activation statistics, figures, the package's source on a page,
    the benchmark, settings.
"""

__version__ = "0.1.0"
