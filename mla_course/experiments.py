"""Experiments: one configuration, trained over several seeds, summarised as mean ± std.

Every results table of the book comes from :func:`sweep`::

    base = Config(activation="sigmoid", lr=0.5, epochs=2)
    table = sweep({name: base.replace(activation=name) for name in ("sigmoid", "relu")},
                  seeds=range(3))
    table  # renders as an HTML table in the book

A :class:`Config` holds everything that defines a run except the seed; the seed
sets the initial weights and the order of the mini-batches.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from . import cache
from . import data as data_lib
from .engine import OPTIMIZERS as BATCHED_OPTIMIZERS
from .engine import Member, train_many
from .models import MLP
from .train import History, fit
from .utils import get_device, seed_everything

__all__ = [
    "OVERFITTING",
    "Config",
    "Result",
    "Table",
    "build",
    "fit_config",
    "run",
    "run_seeds",
    "sweep",
]


@dataclass(frozen=True)
class Config:
    """Everything that defines a training run, except the seed.

    The defaults are the network of Question 1 (784-120-80-10, sigmoid,
    cross-entropy) trained for 2 epochs with plain SGD on mini-batches of 64.
    """

    dataset: str = "mnist"
    n_train: int | None = None  # first n training examples (None: all 60,000)
    n_test: int | None = None  # first n test examples (None: all 10,000)
    hidden: tuple[int, ...] = (120, 80)
    activation: str = "sigmoid"
    init: str = "default"  # a name of mla_course.init.INITS; "default" is PyTorch's
    batch_norm: str | None = None  # None, "before" or "after" the activation
    dropout: float = 0.0
    optimizer: str = "sgd"  # a name of mla_course.optim.OPTIMIZERS
    lr: float = 0.1
    optimizer_kwargs: tuple[tuple[str, float], ...] = ()  # e.g. (("momentum", 0.9),)
    weight_decay: float = 0.0  # L2 penalty, applied by the optimizer
    l1: float = 0.0  # L1 penalty coefficient, added to the loss
    batch_size: int = 64
    epochs: int = 2

    def __post_init__(self):
        if isinstance(self.hidden, list):
            object.__setattr__(self, "hidden", tuple(self.hidden))
        if isinstance(self.optimizer_kwargs, Mapping):
            object.__setattr__(
                self, "optimizer_kwargs", tuple(sorted(self.optimizer_kwargs.items()))
            )
        for name in ("lr",):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and value > 0):
                raise ValueError(f"{name}={value!r}: expected a positive number")
        for name in ("batch_size", "epochs"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}={value!r}: expected a positive integer")
        for name in ("weight_decay", "l1"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)!r}: expected a number >= 0")

    def replace(self, **changes) -> Config:
        """A copy with some fields changed: ``config.replace(lr=0.01)``."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @property
    def sizes(self) -> list[int]:
        return [784, *self.hidden, len(data_lib.classes(self.dataset))]


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


@functools.lru_cache(maxsize=8)
def _tensors(dataset: str, split: str, limit: int | None, device: str):
    return data_lib.load_tensors(dataset, split, device=device, limit=limit)


def load_data(config: Config, device=None):
    """The ``(X, y)`` training and test tensors of ``config``, on ``device`` (cached in memory)."""
    device = str(get_device(device))
    return (
        _tensors(config.dataset, "train", config.n_train, device),
        _tensors(config.dataset, "test", config.n_test, device),
    )


def build(config: Config, seed: int, device=None) -> tuple[MLP, torch.optim.Optimizer]:
    """The model (initial weights set by ``seed``) and optimizer of one run."""
    from .init import init_
    from .optim import make_optimizer

    seed_everything(seed)
    model = MLP(
        config.sizes, config.activation, batch_norm=config.batch_norm, dropout=config.dropout
    )
    if config.init != "default":
        init_(model, config.init)
    model.to(get_device(device))
    optimizer = make_optimizer(
        config.optimizer, model.parameters(), config.lr, **_optimizer_kwargs(config)
    )
    return model, optimizer


def _optimizer_kwargs(config: Config) -> dict:
    """The optimizer's keyword arguments: ``optimizer_kwargs``, plus ``weight_decay`` if set."""
    kwargs = dict(config.optimizer_kwargs)
    if config.weight_decay:
        kwargs["weight_decay"] = config.weight_decay
    return kwargs


def _l1_penalty(coefficient: float):
    def penalty(model):
        return coefficient * sum(m.weight.abs().sum() for m in model.linears)

    return penalty


def fit_config(
    config: Config,
    seed: int = 0,
    device=None,
    *,
    loss_fn: Callable = F.cross_entropy,
    transform: Callable | None = None,
) -> tuple[History, MLP]:
    """Train one model of ``config`` with the plain loop, :func:`mla_course.train.fit`.

    Returns the :class:`~mla_course.train.History` and the trained model. Nothing
    is cached: this is the way to change what a :class:`Config` does not
    describe, a loss other than cross-entropy (``loss_fn(scores, y)``) or a batch
    transform of :mod:`mla_course.regularization` (``transform(x, y)``). A run
    whose loss becomes NaN or infinite stops there (``History.diverged_at``).
    """
    train, test = load_data(config, device)
    model, optimizer = build(config, seed, device)
    history = fit(
        model,
        optimizer,
        train,
        test,
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=seed,
        loss_fn=loss_fn,
        penalty=_l1_penalty(config.l1) if config.l1 else None,
        transform=transform,
        on_divergence="stop",
    )
    return history, model


ENGINES = ("auto", "plain", "batched")


def _not_batchable(config: Config) -> str | None:
    """Why the batched engine cannot run ``config`` (``None`` if it can)."""
    if config.batch_norm is not None:
        return f"batch_norm={config.batch_norm!r}"
    if config.dropout:
        return f"dropout={config.dropout!r}"
    if config.optimizer not in BATCHED_OPTIMIZERS:
        return f"optimizer={config.optimizer!r}"
    return None


def _cache_parts(config: Config, seed: int, device: torch.device) -> dict:
    return {"kind": "history", "config": config.to_dict(), "seed": seed, "device": device.type}


def _run_many(pairs: list[tuple[Config, int]], device=None, engine: str = "auto") -> list[History]:
    """The histories of ``(config, seed)`` pairs: from the cache, else trained and stored.

    Runs the batched engine supports and that share the data, architecture and
    schedule (dataset, sizes, batch size, epochs) are trained together by
    :func:`mla_course.engine.train_many`; the others by the plain loop.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine={engine!r}: expected one of {list(ENGINES)}")
    device = get_device(device)
    done: dict[tuple[Config, int], History] = {}
    keys, todo = {}, []
    for pair in dict.fromkeys(pairs):  # unique, in order
        config, seed = pair
        keys[pair] = cache.key(_cache_parts(config, seed, device))
        value = cache.load(keys[pair])
        if value is not None:
            done[pair] = History.from_dict(value)
        else:
            todo.append(pair)
    groups: dict[tuple, list[tuple[Config, int]]] = {}
    for config, seed in todo:
        reason = _not_batchable(config) if engine != "plain" else "plain"
        if reason is None:
            group = (
                config.dataset,
                config.n_train,
                config.n_test,
                config.hidden,
                config.batch_size,
                config.epochs,
            )
            groups.setdefault(group, []).append((config, seed))
        elif engine == "batched":
            raise ValueError(f"engine='batched' cannot run {reason}: use engine='auto' or 'plain'")
        else:
            done[config, seed] = fit_config(config, seed, device)[0]
            cache.store(
                keys[config, seed], done[config, seed].to_dict(), _cache_parts(config, seed, device)
            )
    for items in groups.values():
        first = items[0][0]
        most = max(1, min(256, (1 << 26) // (first.batch_size * 784)))  # bounds the batch gathers
        for i in range(0, len(items), most):
            chunk = items[i : i + most]
            members = []
            for config, seed in chunk:
                model, _ = build(config, seed, "cpu")  # the plain path's initial weights
                kwargs = _optimizer_kwargs(config)
                members.append(Member(model, config.optimizer, config.lr, kwargs, config.l1, seed))
            train, test = load_data(first, device)
            histories = train_many(
                members,
                train,
                test,
                epochs=first.epochs,
                batch_size=first.batch_size,
                device=device,
            )
            for (config, seed), history in zip(chunk, histories, strict=True):
                done[config, seed] = history
                cache.store(
                    keys[config, seed], history.to_dict(), _cache_parts(config, seed, device)
                )
    return [done[pair] for pair in pairs]


def run(
    config: Config, seed: int = 0, device=None, *, return_model: bool = False, engine: str = "auto"
):
    """Train one model of ``config`` with ``seed`` on the fast path; return its :class:`History`.

    A run whose loss becomes NaN or infinite stops there and is reported with
    ``History.diverged_at`` rather than raising. Results are cached on disk
    (:mod:`mla_course.cache`; ``MLA_NO_CACHE=1`` to recompute). ``engine``:
    ``"plain"`` trains with :func:`mla_course.train.fit`, ``"batched"`` with
    :func:`mla_course.engine.train_many` (same results to float tolerance;
    ``History.time`` is then the batch's time divided by its number of models),
    ``"auto"`` with the batched engine when it supports ``config`` (no batch
    norm, no dropout). ``return_model=True`` always trains afresh with the plain loop
    (:func:`fit_config`).
    """
    if return_model:
        return fit_config(config, seed, device)
    return _run_many([(config, seed)], device, engine)[0]


METRICS = ("test_acc", "test_loss", "train_acc", "train_loss", "time")


@dataclass
class Result:
    """The histories of one configuration over several seeds."""

    config: Config
    seeds: list[int]
    histories: list[History] = field(repr=False)

    def values(self, metric: str) -> list[float]:
        if metric not in METRICS:
            raise ValueError(f"metric={metric!r}: expected one of {list(METRICS)}")
        return [h.final()[metric] if h.diverged_at is None else math.nan for h in self.histories]

    def mean(self, metric: str = "test_acc") -> float:
        v = self.values(metric)
        return sum(v) / len(v)

    def std(self, metric: str = "test_acc") -> float:
        """Sample standard deviation over seeds (0 for a single seed)."""
        v, m = self.values(metric), self.mean(metric)
        return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0

    @property
    def diverged(self) -> int:
        """How many seeds diverged."""
        return sum(h.diverged_at is not None for h in self.histories)

    def curve(self, metric: str = "test_acc") -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std over seeds of a per-epoch (or per-step, ``step_loss``) metric."""
        rows = [torch.tensor(getattr(h, metric), dtype=torch.float64) for h in self.histories]
        n = min(len(r) for r in rows)
        stack = torch.stack([r[:n] for r in rows])
        std = stack.std(0) if len(rows) > 1 else torch.zeros(n, dtype=torch.float64)
        return stack.mean(0), std

    def __str__(self) -> str:
        return f"{self.mean():.4f} ± {self.std():.4f} (n={len(self.seeds)})"


def run_seeds(
    config: Config, seeds: Iterable[int] = (0, 1, 2), device=None, *, engine: str = "auto"
) -> Result:
    """Train ``config`` once per seed and gather the histories (all seeds at once, see :func:`run`)."""
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed")
    return Result(config, seeds, _run_many([(config, s) for s in seeds], device, engine))


class Table(dict):
    """Results by label, shown as a table of mean ± std over seeds.

    In Sphinx-Gallery and Jupyter it renders as HTML; ``print`` gives plain text.
    There is no time column: the engine trains the runs of a sweep together, so
    a run's share of the time says nothing about its configuration (time one
    configuration alone with :func:`run` and ``engine="plain"``).
    """

    columns = (
        ("test_acc", "test accuracy", 100, "%"),
        ("test_loss", "test loss", 1, ""),
        ("train_loss", "train loss", 1, ""),
    )

    def best(self, metric: str = "test_acc", largest: bool = True) -> str:
        """The label with the best mean ``metric`` (ignoring diverged configurations)."""
        finite = {k: r.mean(metric) for k, r in self.items() if not math.isnan(r.mean(metric))}
        if not finite:
            raise ValueError("every configuration diverged: there is no best one")
        return (max if largest else min)(finite, key=finite.get)

    def _cells(self):
        for label, r in self.items():
            cells = []
            for metric, _, scale, unit in self.columns:
                m, s = r.mean(metric) * scale, r.std(metric) * scale
                cells.append("diverged" if math.isnan(m) else f"{m:.2f} ± {s:.2f}{unit}")
            yield label, cells, len(r.seeds), r.diverged

    def __repr__(self) -> str:
        head = ["", *(c[1] for c in self.columns), "seeds"]
        rows = [
            [label, *cells, f"{n}" + (f" ({d} diverged)" if d else "")]
            for label, cells, n, d in self._cells()
        ]
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
        lines = [
            "  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True))
            for row in [head, *rows]
        ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{c[1]}</th>" for c in self.columns)
        body = ""
        for label, cells, n, d in self._cells():
            tds = "".join(f"<td>{c}</td>" for c in cells)
            body += f"<tr><th>{label}</th>{tds}<td>{n}{f' ({d} diverged)' if d else ''}</td></tr>"
        return (
            f'<table class="mla-results"><thead><tr><th></th>{head}<th>seeds</th></tr>'
            f"</thead><tbody>{body}</tbody></table>"
        )


def sweep(
    configs: Mapping[str, Config],
    seeds: Iterable[int] = (0, 1, 2),
    device=None,
    *,
    engine: str = "auto",
) -> Table:
    """Run every configuration over ``seeds``; return a :class:`Table` keyed by label.

    All the runs go to the batched engine together (see :func:`run`), so a sweep of
    ``k`` configurations over ``s`` seeds trains ``k * s`` networks in one set of kernels.
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed")
    pairs = [(cfg, s) for cfg in configs.values() for s in seeds]
    histories = iter(_run_many(pairs, device, engine))
    return Table(
        {
            label: Result(cfg, seeds, [next(histories) for _ in seeds])
            for label, cfg in configs.items()
        }
    )
