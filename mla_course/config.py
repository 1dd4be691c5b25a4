"""The configuration of a training run: everything that defines it, except the seed.

A :class:`Config` names the data, the network, the loss, the optimiser, the
regularisation and the budget of one run; the seed sets the initial weights
and the order of the mini-batches. :mod:`mla_course.runs` trains it::

    base = Config(activation="sigmoid", lr=0.5, epochs=2)
    base.replace(activation="relu")            # a copy with one field changed
    OVERFITTING.replace(augment="noise", augment_kwargs={"std": 0.5})

Every field is checked when the configuration is made, so a sweep refuses a
bad one before it trains anything: each error names the field, the value and
what is allowed. Names are checked against the registries of the lesson
modules (:data:`mla_course.models.ACTIVATIONS`, :data:`mla_course.init.INITS`,
:data:`mla_course.optim.OPTIMIZERS`, :data:`mla_course.augment.TRANSFORMS`,
:data:`LOSSES`), so what a configuration may say is what the package can run.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from . import data as data_lib
from . import losses as losses_lib
from .augment import TRANSFORMS
from .init import INITS
from .models import ACTIVATIONS
from .optim import OPTIMIZERS, hyper_parameters

__all__ = ["EVALUATE_ON", "LOSSES", "OVERFITTING", "SPLIT_SIZES", "Config"]

#: name -> ``loss(scores, target)``, the training loss on the network's scores
#: (logits). ``target`` holds class indices or probabilities ``(batch, classes)``
#: (mixup, cutmix and label smoothing give probabilities).
#:
#: * ``"cross_entropy"``: softmax, then cross-entropy (``F.cross_entropy``);
#: * ``"mse"``: a sigmoid per output, then half the squared error to the one-hot
#:   target, summed over the outputs (:func:`mla_course.losses.sigmoid_l2`):
#:   the loss of the 1980s networks that page 02 compares with the first.
#:
#: Whatever the training loss, ``History.test_loss`` and ``train_loss`` are the
#: cross-entropy of the scores, so that runs compare on one scale.
LOSSES: dict[str, Callable[..., torch.Tensor]] = {
    "cross_entropy": F.cross_entropy,
    "mse": losses_lib.sigmoid_l2,
}

#: The splits a run may report its ``test_*`` metrics on.
EVALUATE_ON = ("test", "validation")

#: Examples per split, the same for every data set of :data:`mla_course.data.DATASETS`
#: (MNIST and Fashion-MNIST; their files are checked by MD5, so the sizes are fixed).
SPLIT_SIZES = {"train": 60_000, "test": 10_000}

_BATCH_NORM = (None, "before", "after")


@dataclass(frozen=True)
class Config:
    """Everything that defines a training run, except the seed.

    The defaults are the network of Question 1 (784-120-80-10, sigmoid,
    cross-entropy) trained for 2 epochs with plain SGD on mini-batches of 64.

    Validation split: ``holdout=k`` keeps the *last* ``k`` training images out
    of training. With ``evaluate_on="validation"`` every ``test_*`` metric of
    the run is measured on them instead of the test set (the history says so
    in ``History.evaluated_on``): tune on that, then read the test set once
    with ``evaluate_on="test"``.
    """

    dataset: str = "mnist"  # a name of mla_course.data.DATASETS
    n_train: int | None = None  # first n training examples (None: all but the holdout)
    n_test: int | None = None  # first n test examples (None: all 10,000)
    hidden: tuple[int, ...] = (120, 80)  # hidden layer widths
    activation: str = "sigmoid"  # a name of mla_course.models.ACTIVATIONS
    init: str = "default"  # a name of mla_course.init.INITS; "default" is PyTorch's
    batch_norm: str | None = None  # None, "before" or "after" the activation
    dropout: float = 0.0  # probability of zeroing a hidden unit, in [0, 1)
    loss: str = "cross_entropy"  # a name of LOSSES
    label_smoothing: float = 0.0  # share of the target spread over all classes, in [0, 1)
    optimizer: str = "sgd"  # a name of mla_course.optim.OPTIMIZERS
    lr: float = 0.1
    optimizer_kwargs: tuple[tuple[str, object], ...] = ()  # e.g. {"momentum": 0.9}
    weight_decay: float = 0.0  # L2 penalty, applied by the optimizer
    l1: float = 0.0  # L1 penalty coefficient, added to the loss
    augment: str | None = None  # a name of mla_course.augment.TRANSFORMS
    augment_kwargs: tuple[tuple[str, object], ...] = ()  # e.g. {"std": 0.5}
    holdout: int = 0  # last training examples kept out of training, as a validation split
    evaluate_on: str = "test"  # the split of the test_* metrics: "test" or "validation"
    batch_size: int = 64
    epochs: int = 2

    def __post_init__(self):
        for name, value in _checked(self).items():
            object.__setattr__(self, name, value)

    def replace(self, **changes) -> Config:
        """A copy with some fields changed: ``config.replace(lr=0.01)``."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Every field, as plain data (the description of a run in the results cache)."""
        return dataclasses.asdict(self)

    @property
    def sizes(self) -> list[int]:
        """Layer widths from input to output, e.g. ``[784, 120, 80, 10]``."""
        return [784, *self.hidden, len(data_lib.classes(self.dataset))]

    @property
    def network_steps(self) -> int:
        """Mini-batch steps of one run: ``epochs * ceil(train_size / batch_size)``."""
        return self.epochs * math.ceil(self.train_size / self.batch_size)

    @property
    def training_flops(self) -> int:
        """Floating-point operations of one run's matrix products in training: three times
        the forward pass's (forward, and the two products of the backward pass), at
        ``2 * n_in * n_out`` per example and layer. Evaluation is not counted."""
        per_example = sum(a * b for a, b in itertools.pairwise(self.sizes))
        return 3 * 2 * per_example * self.train_size * self.epochs

    @property
    def train_size(self) -> int:
        """How many images the network trains on."""
        available = SPLIT_SIZES["train"] - self.holdout
        return available if self.n_train is None else self.n_train


# ---------------------------------------------------------------------------
# The checks. Each returns the normalised value or raises ValueError naming the
# field, the value and what is allowed.
# ---------------------------------------------------------------------------


def _fail(name: str, value, allowed: str):
    raise ValueError(f"{name}={value!r}: expected {allowed}")


def _one_of(name: str, value, allowed) -> None:
    if not isinstance(value, str | None) or value not in allowed:
        _fail(name, value, f"one of {list(allowed)}")


def _integer(name: str, value, low: int | None, high: int | None = None, *, none=False):
    if value is None and none:
        return None
    if low is None:
        allowed = "an integer"
    elif high is None:
        allowed = f"an integer >= {low}"
    else:
        allowed = f"an integer in [{low}, {high}]"
    if none:
        allowed += " or None"
    bad_type = isinstance(value, bool) or not isinstance(value, numbers.Integral)
    if bad_type or (low is not None and value < low) or (high is not None and value > high):
        _fail(name, value, allowed)
    return int(value)


def _real(name: str, value, low=-math.inf, high=math.inf, *, open_low=False, open_high=False):
    """A finite float in the interval; ints are taken (and stored as floats), bools are not."""
    if high < math.inf:
        lo, hi = "(" if open_low else "[", ")" if open_high else "]"
        allowed = f"a finite number in {lo}{low:g}, {high:g}{hi}"
    elif low > -math.inf:
        allowed = f"a finite number {'>' if open_low else '>='} {low:g}"
    else:
        allowed = "a finite number"
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        _fail(name, value, allowed)
    if value < low or (open_low and value == low) or value > high or (open_high and value == high):
        _fail(name, value, allowed)
    return float(value)


def _hidden(value) -> tuple[int, ...]:
    allowed = "a tuple of positive ints, e.g. (120,) or (120, 80)"
    if isinstance(value, list):
        value = tuple(value)
    if not isinstance(value, tuple):
        _fail("hidden", value, allowed)
    for width in value:
        if isinstance(width, bool) or not isinstance(width, numbers.Integral) or width <= 0:
            _fail("hidden", value, allowed)
    return tuple(int(w) for w in value)


def _pairs(name: str, value) -> tuple[tuple[str, object], ...]:
    """A mapping or pairs, as sorted ``(name, value)`` pairs (hashable, one spelling per run)."""
    if isinstance(value, Mapping):
        value = tuple(value.items())
    try:
        pairs = tuple((k, v) for k, v in value)
    except (TypeError, ValueError):
        _fail(name, value, "a dict of keyword arguments, e.g. {'momentum': 0.9}")
    for k, _ in pairs:
        if not isinstance(k, str):
            _fail(name, value, "a dict with str keys")
    if len({k for k, _ in pairs}) != len(pairs):
        _fail(name, value, "each argument once")
    return tuple(sorted(pairs))


def _arguments(name: str, pairs, cls, owner: str, skip: tuple[str, ...]) -> tuple:
    """Check ``pairs`` against the keyword arguments of ``cls``; normalise their values.

    A value takes the kind of the argument's default: a bool stays a bool, an
    integer argument takes only integers, a pair (Adam's ``betas``) a tuple of
    finite numbers, anything else a finite number (stored as a float).
    """
    parameters = inspect.signature(cls).parameters
    accepted = {k: p.default for k, p in parameters.items() if k not in skip}
    out = []
    for key, value in pairs:
        field = f"{name}[{key!r}]"
        if key not in accepted:
            _fail(name, dict(pairs), f"arguments of {owner} among {sorted(accepted)}")
        default = accepted[key]
        if isinstance(default, bool):
            if not isinstance(value, bool):
                _fail(field, value, "True or False")
        elif isinstance(default, tuple):
            if not isinstance(value, tuple | list) or len(value) != len(default):
                _fail(field, value, f"a tuple of {len(default)} finite numbers")
            value = tuple(_real(field, v) for v in value)
        elif isinstance(default, int):
            value = _integer(field, value, None)
        else:
            value = _real(field, value)
        out.append((key, value))
    return tuple(out)


def _checked(c: Config) -> dict:
    """The normalised value of every field of ``c``, or a ValueError on the first bad one."""
    v = {}
    _one_of("dataset", c.dataset, sorted(data_lib.DATASETS))
    v["holdout"] = _integer("holdout", c.holdout, 0, SPLIT_SIZES["train"] - 1)
    most = SPLIT_SIZES["train"] - v["holdout"]
    v["n_train"] = _integer("n_train", c.n_train, 1, none=True)
    if v["n_train"] is not None and v["n_train"] > most:
        less = f", less holdout={v['holdout']}" if v["holdout"] else ""
        where = f"the {SPLIT_SIZES['train']} training images of {c.dataset}{less}"
        _fail("n_train", c.n_train, f"at most {most} ({where}) or None")
    v["n_test"] = _integer("n_test", c.n_test, 1, SPLIT_SIZES["test"], none=True)
    v["hidden"] = _hidden(c.hidden)
    _one_of("activation", c.activation, sorted(ACTIVATIONS))
    _one_of("init", c.init, sorted(INITS))
    _one_of("batch_norm", c.batch_norm, _BATCH_NORM)
    v["dropout"] = _real("dropout", c.dropout, 0.0, 1.0, open_high=True)
    _one_of("loss", c.loss, sorted(LOSSES))
    v["label_smoothing"] = _real("label_smoothing", c.label_smoothing, 0.0, 1.0, open_high=True)
    _one_of("optimizer", c.optimizer, sorted(OPTIMIZERS))
    v["lr"] = _real("lr", c.lr, 0.0, open_low=True)
    v["weight_decay"] = _real("weight_decay", c.weight_decay, 0.0)
    v["l1"] = _real("l1", c.l1, 0.0)
    v["optimizer_kwargs"] = _optimizer_kwargs(c, v)
    v["augment_kwargs"] = _augment_kwargs(c)
    _one_of("evaluate_on", c.evaluate_on, EVALUATE_ON)
    if c.evaluate_on == "validation" and not v["holdout"]:
        _fail("evaluate_on", c.evaluate_on, "'test' when holdout=0: hold out a validation split")
    v["batch_size"] = _integer("batch_size", c.batch_size, 1)
    v["epochs"] = _integer("epochs", c.epochs, 1)
    return v


def _optimizer_kwargs(c: Config, v: dict) -> tuple:
    pairs = _pairs("optimizer_kwargs", c.optimizer_kwargs)
    if any(k in ("lr", "weight_decay") for k, _ in pairs):
        _fail("optimizer_kwargs", dict(pairs), "no 'lr' or 'weight_decay': they are Config fields")
    cls = OPTIMIZERS[c.optimizer]
    skip = ("params", "lr", "weight_decay")
    pairs = _arguments("optimizer_kwargs", pairs, cls, f"optimizer={c.optimizer!r}", skip)
    try:  # the optimiser's own range checks (momentum in [0, 1), ...)
        hyper_parameters(c.optimizer, v["lr"], **dict(pairs))
    except (TypeError, ValueError) as err:
        raise ValueError(f"optimizer_kwargs={dict(pairs)!r} for {cls.__name__}: {err}") from None
    return pairs


def _augment_kwargs(c: Config) -> tuple:
    if c.augment is None:
        if c.augment_kwargs:
            _fail("augment_kwargs", c.augment_kwargs, "() when augment=None")
        return ()
    _one_of("augment", c.augment, sorted(TRANSFORMS))
    cls = TRANSFORMS[c.augment]
    pairs = _pairs("augment_kwargs", c.augment_kwargs)
    skip = ("generator", "num_classes")  # num_classes comes from the data set
    pairs = _arguments("augment_kwargs", pairs, cls, f"augment={c.augment!r}", skip)
    try:  # the transform's own range checks
        make_transform(c.augment, dict(pairs), len(data_lib.classes(c.dataset)))
    except (TypeError, ValueError) as err:
        raise ValueError(f"augment_kwargs={dict(pairs)!r} for {cls.__name__}: {err}") from None
    return pairs


def make_transform(name: str, kwargs: dict, classes: int, generator=None):
    """The batch transform ``name`` of :data:`~mla_course.augment.TRANSFORMS`."""
    cls = TRANSFORMS[name]
    if "num_classes" in inspect.signature(cls).parameters:
        kwargs = {**kwargs, "num_classes": classes}
    return cls(**kwargs, generator=generator)


#: The over-fitting setting of chapter 3, shared by the pages on norm penalties,
#: dropout and data augmentation: the first 500 MNIST training images, a
#: 784-256-256-10 ReLU network (about 270,000 weights), SGD with momentum (0.9,
#: the default of :class:`mla_course.optim.Momentum`) and step 0.05 for 40
#: epochs; accuracy on the first 2,000 test images. With so few examples for so
#: many weights, the network learns its training set by heart.
OVERFITTING = Config(
    n_train=500,
    n_test=2000,
    hidden=(256, 256),
    activation="relu",
    optimizer="momentum",
    lr=0.05,
    epochs=40,
)
