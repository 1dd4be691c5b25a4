"""Training and evaluation: a plain loop to read, and :func:`fit` to run it.

:func:`train_epoch` and :func:`evaluate` are the loop of the PyTorch optimisation
tutorial, written to be read in one screen. :func:`fit` repeats them for a
number of epochs and records a :class:`History`. The same seed gives the same
initial weights (seed the model before building it) and, through ``seed``, the
same mini-batches in the same order, so a run on the CPU is repeatable number
for number.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .data import iterate_batches
from .settings import generator as seeded_generator

__all__ = [
    "EarlyStopping",
    "History",
    "TrainingDiverged",
    "confusion_matrix",
    "evaluate",
    "fit",
    "predict",
    "train_epoch",
]

Batches = Iterable[tuple[torch.Tensor, torch.Tensor]]
Data = tuple[torch.Tensor, torch.Tensor] | DataLoader


class TrainingDiverged(FloatingPointError):
    """The training loss became NaN or infinite."""

    def __init__(self, step: int, loss: float):
        super().__init__(
            f"the training loss became {loss} at step {step}: training stopped. "
            "The learning rate is probably too large for this model and initialisation."
        )
        self.step, self.loss = step, loss


@dataclass
class History:
    """What one training run recorded.

    ``step_loss`` has one value per mini-batch; the other lists one value per
    epoch, measured after that epoch on the whole split. ``time`` is the
    cumulated training wall time in seconds at the end of each epoch (evaluation
    excluded). ``diverged_at`` is the step at which the loss became NaN or
    infinite, if it did. ``evaluated_on`` names the split that the ``test_*``
    lists were measured on: ``"test"``, or ``"validation"`` for a run that
    holds out part of its training set (``Config(holdout=..., evaluate_on=...)``).
    """

    step_loss: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_loss: list[float] = field(default_factory=list)
    test_acc: list[float] = field(default_factory=list)
    time: list[float] = field(default_factory=list)
    diverged_at: int | None = None
    evaluated_on: str = "test"

    @property
    def epochs(self) -> int:
        return len(self.test_acc)

    def final(self) -> dict[str, float]:
        """The last value of each per-epoch metric (NaN where a run diverged early)."""
        nan = float("nan")
        return {
            k: (getattr(self, k)[-1] if getattr(self, k) else nan)
            for k in ("train_loss", "train_acc", "test_loss", "test_acc", "time")
        }

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> History:
        """The history that :meth:`to_dict` wrote; ``TypeError`` or ``ValueError`` if not one."""
        if not isinstance(d, dict):
            raise TypeError(f"a History is stored as a dict, not a {type(d).__name__}")
        names = [f.name for f in fields(cls)]
        if set(d) != set(names):
            raise ValueError(f"History fields {sorted(d)}: expected exactly {sorted(names)}")
        for name, value in d.items():
            if name == "diverged_at":
                ok = value is None or (isinstance(value, int) and not isinstance(value, bool))
            elif name == "evaluated_on":
                ok = isinstance(value, str)
            else:
                ok = isinstance(value, list) and all(
                    isinstance(x, int | float) and not isinstance(x, bool) for x in value
                )
            if not ok:
                raise ValueError(f"History.{name}={value!r:.80}: not what to_dict writes")
        return cls(**d)

    def __repr__(self) -> str:
        parts = [f"epochs={self.epochs}", f"steps={len(self.step_loss)}"]
        if self.epochs:  # no per-epoch value to show before the first epoch ends
            f = self.final()
            parts += [f"test_acc={f['test_acc']:.4f}", f"test_loss={f['test_loss']:.4f}"]
            parts += [f"time={f['time']:.1f}s"] if self.time else []
        if self.evaluated_on != "test":
            parts.append(f"evaluated_on={self.evaluated_on!r}")
        parts.append(f"diverged_at={self.diverged_at}")
        return f"History({', '.join(parts)})"


def train_epoch(
    model: nn.Module,
    batches: Batches,
    optimizer: torch.optim.Optimizer,
    loss_fn: Callable = F.cross_entropy,
    *,
    penalty: Callable[[nn.Module], torch.Tensor] | None = None,
    transform: Callable | None = None,
    first_step: int = 0,
) -> list[float]:
    """One pass over ``batches``: forward, loss, backward, update. Returns the loss of each step.

    ``transform(x, y)`` may change a batch first (augmentation, mixup: ``y`` may
    become soft labels of shape ``(batch, classes)``); ``penalty(model)`` is added
    to the loss (an L1 or L2 norm of the weights, say).
    """
    device = next(model.parameters()).device
    model.train()
    losses = []
    for step, (x, y) in enumerate(batches, start=first_step):
        x, y = x.to(device), y.to(device)  # a no-op on the fast path
        if transform is not None:
            x, y = transform(x, y)
        loss = loss_fn(model(x), y)
        if penalty is not None:
            loss = loss + penalty(model)
        if not torch.isfinite(loss):
            raise TrainingDiverged(step, loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def evaluate(model: nn.Module, batches: Batches, loss_fn: Callable = F.cross_entropy):
    """Mean loss and accuracy of ``model`` over ``batches`` (in evaluation mode)."""
    device = next(model.parameters()).device
    model.eval()
    total_loss, correct, n = 0.0, 0, 0
    for x, y in batches:
        x, y = x.to(device), y.to(device)
        scores = model(x)  # (batch, classes)
        total_loss += loss_fn(scores, y, reduction="sum").item()
        correct += (scores.argmax(1) == y).sum().item()
        n += len(y)
    return total_loss / n, correct / n


@torch.no_grad()
def predict(model: nn.Module, X: torch.Tensor, batch_size: int = 2048) -> torch.Tensor:
    """The scores (logits) of ``model`` for every row of ``X``, in evaluation mode."""
    model.eval()
    return torch.cat([model(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])


def confusion_matrix(y_true: torch.Tensor, y_pred: torch.Tensor, n_classes: int = 10):
    """``C[i, j]`` counts the examples of class ``i`` predicted as class ``j``."""
    index = y_true.long().cpu() * n_classes + y_pred.long().cpu()
    return torch.bincount(index, minlength=n_classes**2).reshape(n_classes, n_classes)


def _batches(data: Data, batch_size: int, shuffle: bool, generator: torch.Generator | None):
    if isinstance(data, DataLoader):
        return data
    X, y = data
    return iterate_batches(X, y, batch_size, shuffle=shuffle, generator=generator)


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train: Data,
    test: Data,
    *,
    epochs: int,
    batch_size: int = 64,
    seed: int = 0,
    loss_fn: Callable = F.cross_entropy,
    penalty: Callable[[nn.Module], torch.Tensor] | None = None,
    transform: Callable | None = None,
    on_epoch_end: Callable[[History, nn.Module], bool | None] | None = None,
    on_divergence: str = "raise",
    progress: bool | None = None,
) -> History:
    """Train ``model`` for ``epochs`` epochs and evaluate it after each one.

    ``train`` and ``test`` are either ``(X, y)`` tensors on the model's device
    (the fast path: mini-batches of ``batch_size`` drawn in an order set by
    ``seed``, shifted by ``MLA_SEED_OFFSET``) or ``DataLoader`` objects (the tutorial's path). ``on_epoch_end``
    may return ``True`` to stop early. When the loss becomes NaN or infinite,
    ``on_divergence="raise"`` raises :class:`TrainingDiverged`; ``"stop"``
    returns the history so far with ``diverged_at`` set. ``progress=None`` shows
    a progress bar only on a terminal.
    """
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs={epochs!r}: expected a non-negative integer")
    if on_divergence not in ("raise", "stop"):
        raise ValueError(f"on_divergence={on_divergence!r}: expected 'raise' or 'stop'")
    generator = seeded_generator(seed)  # shifted by MLA_SEED_OFFSET
    history = History()
    elapsed = 0.0
    bar = tqdm(
        range(epochs),
        desc="epochs",
        leave=False,
        disable=None if progress is None else not progress,
    )
    for _ in bar:
        start = time.perf_counter()
        try:
            history.step_loss += train_epoch(
                model,
                _batches(train, batch_size, True, generator),
                optimizer,
                loss_fn,
                penalty=penalty,
                transform=transform,
                first_step=len(history.step_loss),
            )
        except TrainingDiverged as err:
            if on_divergence == "raise":
                raise
            history.diverged_at = err.step
            break
        elapsed += time.perf_counter() - start
        for split, data in (("train", train), ("test", test)):
            loss, acc = evaluate(model, _batches(data, 2048, False, None), F.cross_entropy)
            getattr(history, f"{split}_loss").append(loss)
            getattr(history, f"{split}_acc").append(acc)
        history.time.append(elapsed)
        bar.set_postfix(test_acc=f"{history.test_acc[-1]:.4f}")
        if on_epoch_end is not None and on_epoch_end(history, model):
            break
    return history


class EarlyStopping:
    """Stop when ``monitor`` has not improved for ``patience`` epochs and restore the best weights.

    Use as ``fit(..., on_epoch_end=EarlyStopping(patience=3))``. After each epoch
    it reads the last value of ``history.<monitor>`` and keeps a copy of the
    weights if it is the best so far (lower for a loss, higher for an accuracy,
    by at least ``min_delta``). When it stops training it loads the best
    weights back into the model; if training ends first, call
    :meth:`restore`. It resets itself at the first epoch of a new run.

    ``fit`` calls its second split ``test``: to keep the test set untouched,
    pass a validation split there while tuning (Prechelt, 1998).
    """

    def __init__(self, patience: int = 5, monitor: str = "test_loss", min_delta: float = 0.0):
        if not isinstance(patience, int) or isinstance(patience, bool) or patience < 1:
            raise ValueError(f"patience={patience!r}: expected a positive integer (epochs)")
        allowed = ("test_loss", "test_acc", "train_loss", "train_acc")
        if monitor not in allowed:
            raise ValueError(f"monitor={monitor!r}: expected one of {list(allowed)}")
        if isinstance(min_delta, bool) or not isinstance(min_delta, int | float) or min_delta < 0:
            raise ValueError(f"min_delta={min_delta!r}: expected a number >= 0")
        self.patience, self.monitor, self.min_delta = patience, monitor, min_delta
        self.sign = 1.0 if monitor.endswith("loss") else -1.0  # minimise sign * value
        self.reset()

    def reset(self) -> None:
        self.best_value: float = math.inf
        self.best_epoch: int | None = None  # 1-based
        self.best_state: dict | None = None
        self.stopped_epoch: int | None = None
        self._wait = 0

    def __call__(self, history, model: nn.Module) -> bool:
        epoch = len(getattr(history, self.monitor))
        if epoch == 1:
            self.reset()
        value = self.sign * getattr(history, self.monitor)[-1]
        if value < self.best_value - self.min_delta:
            self.best_value, self.best_epoch, self._wait = value, epoch, 0
            self.best_state = copy.deepcopy(model.state_dict())
            return False
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_epoch = epoch
            self.restore(model)
            return True
        return False

    def restore(self, model: nn.Module) -> nn.Module:
        """Load the best weights seen into ``model`` and return it."""
        if self.best_state is None:
            raise RuntimeError("EarlyStopping.restore: no epoch has been seen yet")
        model.load_state_dict(self.best_state)
        return model

    def __repr__(self) -> str:
        best = None if self.best_epoch is None else self.sign * self.best_value
        return (
            f"EarlyStopping(patience={self.patience}, monitor={self.monitor!r}, "
            f"best_epoch={self.best_epoch}, best={best}, stopped_epoch={self.stopped_epoch})"
        )
