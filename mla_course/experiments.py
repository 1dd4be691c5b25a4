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
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import torch

from . import data as data_lib
from .models import MLP
from .train import History, fit
from .utils import get_device, seed_everything

__all__ = ["Config", "Result", "Table", "build", "run", "run_seeds", "sweep"]


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
            object.__setattr__(self, "optimizer_kwargs", tuple(sorted(self.optimizer_kwargs.items())))
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
    kwargs = dict(config.optimizer_kwargs)
    if config.weight_decay:
        kwargs["weight_decay"] = config.weight_decay
    optimizer = make_optimizer(config.optimizer, model.parameters(), config.lr, **kwargs)
    return model, optimizer


def _l1_penalty(coefficient: float):
    def penalty(model):
        return coefficient * sum(m.weight.abs().sum() for m in model.linears)

    return penalty


def run(config: Config, seed: int = 0, device=None, *, return_model: bool = False):
    """Train one model of ``config`` with ``seed`` on the fast path; return its :class:`History`.

    A run whose loss becomes NaN or infinite stops there and is reported with
    ``History.diverged_at`` rather than raising.
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
        penalty=_l1_penalty(config.l1) if config.l1 else None,
        on_divergence="stop",
    )
    return (history, model) if return_model else history


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


def run_seeds(config: Config, seeds: Iterable[int] = (0, 1, 2), device=None) -> Result:
    """Train ``config`` once per seed and gather the histories."""
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed")
    return Result(config, seeds, [run(config, s, device) for s in seeds])


class Table(dict):
    """Results by label, shown as a table of mean ± std over seeds.

    In Sphinx-Gallery and Jupyter it renders as HTML; ``print`` gives plain text.
    """

    columns = (("test_acc", "test accuracy", 100, "%"), ("test_loss", "test loss", 1, ""),
               ("train_loss", "train loss", 1, ""), ("time", "train time (s)", 1, ""))

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
        rows = [[label, *cells, f"{n}" + (f" ({d} diverged)" if d else "")]
                for label, cells, n, d in self._cells()]
        widths = [max(len(str(x)) for x in col) for col in zip(head, *rows, strict=True)]
        lines = ["  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=True))
                 for row in [head, *rows]]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{c[1]}</th>" for c in self.columns)
        body = ""
        for label, cells, n, d in self._cells():
            tds = "".join(f"<td>{c}</td>" for c in cells)
            body += f"<tr><th>{label}</th>{tds}<td>{n}{f' ({d} diverged)' if d else ''}</td></tr>"
        return (f'<table class="mla-results"><thead><tr><th></th>{head}<th>seeds</th></tr>'
                f"</thead><tbody>{body}</tbody></table>")


def sweep(configs: Mapping[str, Config], seeds: Iterable[int] = (0, 1, 2), device=None) -> Table:
    """Run every configuration over ``seeds``; return a :class:`Table` keyed by label."""
    seeds = list(seeds)
    return Table({label: run_seeds(cfg, seeds, device) for label, cfg in configs.items()})
