"""Transitional: the old home of configurations, runs and tables, now split by concern.

* :mod:`mla_course.config`: :class:`~mla_course.config.Config`, ``OVERFITTING``;
* :mod:`mla_course.runs`: :func:`~mla_course.runs.sweep`,
  :func:`~mla_course.runs.train_network`, ``build``, ``load_data``;
* :mod:`mla_course.tables`: :class:`~mla_course.tables.Result`,
  :class:`~mla_course.tables.Table`.

This module re-exports them so that the pages keep running while they move to
the new modules. ``run``, ``run_seeds`` and ``fit_config`` are thin wrappers
kept for the same reason. TRANSITIONAL: this module is removed once the pages
have moved; write new code against the modules above.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

import torch.nn.functional as F

from . import runs
from .config import OVERFITTING, Config
from .regularization import l1_penalty
from .runs import ENGINES, build, load_data, train_network
from .tables import METRICS, Result, Table
from .train import History, fit
from .utils import shifted_seed

__all__ = [
    "ENGINES",
    "METRICS",
    "OVERFITTING",
    "Config",
    "Result",
    "Table",
    "build",
    "fit_config",
    "load_data",
    "run",
    "run_seeds",
    "sweep",
    "train_network",
]


def run(config: Config, seed: int = 0, device=None, *, return_model=False, engine="auto"):
    """Transitional: ``train_network(...)`` with ``return_model``, else the run's history."""
    if return_model:
        return train_network(config, seed, engine=engine, device=device)
    return runs.sweep({"": config}, [seed], engine=engine, device=device)[""].histories[0]


def run_seeds(config: Config, seeds: Iterable[int] = (0, 1, 2), device=None, *, engine="auto"):
    """Transitional: the :class:`Result` of ``config`` in ``sweep({"": config}, seeds)``."""
    return runs.sweep({"": config}, seeds, engine=engine, device=device)[""]


def sweep(configs: Mapping[str, Config], seeds=(0, 1, 2), device=None, *, engine="auto"):
    """Transitional: :func:`mla_course.runs.sweep`, also taking ``device`` by position."""
    return runs.sweep(configs, seeds, engine=engine, device=device)


def fit_config(
    config: Config,
    seed: int = 0,
    device=None,
    *,
    loss_fn: Callable = F.cross_entropy,
    transform: Callable | None = None,
) -> tuple[History, object]:
    """Transitional: one plain-loop run of ``config`` with a loss or transform given by function.

    Not cached. Use ``Config(loss=..., augment=...)`` with :func:`train_network` instead.
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
        seed=shifted_seed(seed),
        loss_fn=loss_fn,
        penalty=l1_penalty(alpha=config.l1) if config.l1 else None,
        transform=transform,
        on_divergence="stop",
    )
    history.evaluated_on = config.evaluate_on
    return history, model
