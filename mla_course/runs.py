"""Running configurations: a results table over seeds, or one network and its history.

Two ways to train a :class:`~mla_course.config.Config`, named for what they return:

* :func:`sweep` trains every configuration over several seeds and returns a
  :class:`~mla_course.tables.Table` of mean ± std::

      table = sweep({name: base.replace(activation=name) for name in ("sigmoid", "relu")})

* :func:`train_network` trains one configuration with one seed and returns its
  :class:`~mla_course.train.History` *and that same trained network*.

(The third way, the plain loop :func:`mla_course.train.fit`, is for the pages
where the loop itself is the lesson.)

Both run a configuration the same way. Where the batched engine can run it
(:func:`mla_course.engine.unsupported` says ``None``), the networks of a sweep
that share the data, architecture and schedule are trained together by
:func:`mla_course.engine.train_many`; otherwise by the plain loop. Every run is
cached on disk (:mod:`mla_course.cache`) under a key made of the whole
configuration, the effective seed, the device, the engine path and the
package's code, so a rebuild reuses what did not change. Pages never touch
the cache.

:func:`train_network` returns the very network of the sweep's table for the
same configuration and seed. A sweep stores histories only (weights would cost
more time to write than a small run takes to train); :func:`train_network`
stores the weights too. Asked for a run that a sweep trained, it trains that
run again alone, checks that it takes the same steps (the engine's networks do
not interact, so a network trains bit for bit alike whatever its companions),
and returns the cached history with that network; the next call reads both.

Seeds: the seeds given are shifted by ``MLA_SEED_OFFSET``
(:func:`mla_course.settings.shifted_seed`) before anything is drawn; tables still
label the seeds as given. A seed sets the initial weights, the order of the
mini-batches and the draws of a data transform.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import safetensors.torch
import torch
from torch import nn
from tqdm.auto import tqdm

from . import cache, settings
from . import data as data_lib
from . import engine as engine_lib
from .config import LOSSES, Config, make_transform
from .init import init_
from .losses import smooth_labels
from .models import MLP
from .optim import make_optimizer
from .penalties import l1_penalty
from .tables import Result, Table
from .train import History, fit

__all__ = ["ENGINES", "TrainingLoss", "build", "load_data", "sweep", "train_network"]

#: ``"auto"``: the batched engine where it can run a configuration, else the
#: plain loop; ``"plain"``: always the plain loop; ``"batched"``: always the
#: engine (an error for a configuration it cannot run).
ENGINES = ("auto", "plain", "batched")

# What the networks trained together by the engine share: data, architecture, schedule.
_SAME_IN_A_BATCH = (
    "dataset",
    "n_train",
    "n_test",
    "holdout",
    "evaluate_on",
    "hidden",
    "batch_size",
    "epochs",
)

# Networks per engine call at most: bounds the memory of the batch gathers.
_FLOATS_PER_CALL = 1 << 26


# ------------------------------------------------------------------------- building a run
_tensor_cache: dict[tuple, tuple[torch.Tensor, torch.Tensor]] = {}


def _tensors(dataset: str, split: str, device: torch.device):
    """A whole split on ``device``, loaded once per process (a few recent ones kept)."""
    k = (dataset, split, str(device))
    if k not in _tensor_cache:
        if len(_tensor_cache) >= 6:
            _tensor_cache.pop(next(iter(_tensor_cache)))
        _tensor_cache[k] = data_lib.load_tensors(dataset, split, device=device)
    return _tensor_cache[k]


def load_data(config: Config, device=None):
    """The ``(X, y)`` tensors a run of ``config`` trains on, and those it is evaluated on.

    Training: the first ``n_train`` images of the training set, the last
    ``holdout`` ones excepted. Evaluation: the first ``n_test`` test images, or
    with ``evaluate_on="validation"`` the ``holdout`` held-out images.
    """
    _check_config(config)
    device = settings.get_device(device)
    X, y = _tensors(config.dataset, "train", device)
    n = config.train_size
    train = (X[:n], y[:n])
    if config.evaluate_on == "validation":
        return train, (X[len(X) - config.holdout :], y[len(y) - config.holdout :])
    Xt, yt = _tensors(config.dataset, "test", device)
    return train, (Xt[: config.n_test], yt[: config.n_test])


def build(config: Config, seed: int = 0, device=None) -> tuple[MLP, torch.optim.Optimizer]:
    """The network of ``config`` with its initial weights (set by ``seed``), and its optimiser."""
    _check_config(config)
    settings.seed_everything(seed)  # the global generator still draws dropout masks
    model = MLP(
        config.sizes, config.activation, batch_norm=config.batch_norm, dropout=config.dropout
    )
    # The initial weights come from a generator of this run's own, not the global one that
    # other threads may be drawing from at the same time.
    init_(model, config.init, generator=settings.generator(seed))
    model.to(settings.get_device(device))
    optimizer = make_optimizer(
        config.optimizer, model.parameters(), config.lr, **_optimizer_kwargs(config)
    )
    return model, optimizer


def _optimizer_kwargs(config: Config) -> dict:
    """The optimiser's keyword arguments: ``optimizer_kwargs``, plus ``weight_decay`` if set."""
    kwargs = dict(config.optimizer_kwargs)
    if config.weight_decay:
        kwargs["weight_decay"] = config.weight_decay
    return kwargs


class TrainingLoss:
    """The training loss of a configuration, ``loss(scores, y)``, label smoothing included.

    Smoothing replaces the target ``y*`` by ``(1 - eps) y* + eps / classes``
    (:func:`mla_course.losses.smooth_labels`), the same for every loss; without it the
    loss gets the labels as they come, so cross-entropy is exactly ``F.cross_entropy``.
    """

    def __init__(self, config: Config):
        self.loss, self.eps = LOSSES[config.loss], config.label_smoothing
        self.classes = len(data_lib.classes(config.dataset))

    def __call__(self, scores: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.eps:
            y = smooth_labels(y, self.classes, self.eps, scores.dtype)  # (batch, classes)
        return self.loss(scores, y)


def _fit(config: Config, seed: int, device: torch.device, progress) -> tuple[History, MLP]:
    """One run with the plain loop, :func:`mla_course.train.fit`."""
    train, evaluation = load_data(config, device)
    model, optimizer = build(config, seed, device)
    transform = None
    if config.augment is not None:
        generator = settings.generator(seed)
        classes = len(data_lib.classes(config.dataset))
        transform = make_transform(config.augment, dict(config.augment_kwargs), classes, generator)
    history = fit(
        model,
        optimizer,
        train,
        evaluation,
        epochs=config.epochs,
        batch_size=config.batch_size,
        seed=seed,
        loss_fn=TrainingLoss(config),
        penalty=l1_penalty(alpha=config.l1) if config.l1 else None,
        transform=transform,
        on_divergence="stop",
        progress=progress,
    )
    history.evaluated_on = config.evaluate_on
    return history, model


# ------------------------------------------------------------------------------ the cache
def _path(config: Config, engine_choice: str) -> str:
    """The engine path that trains ``config``: ``"batched"`` or ``"plain"``."""
    if engine_choice == "plain":
        return "plain"
    reason = engine_lib.unsupported(config)
    if reason is None:
        return "batched"
    if engine_choice == "batched":
        raise ValueError(f"engine='batched' cannot run {reason}: use engine='auto' or 'plain'")
    return "plain"


def _parts(kind: str, config: Config, seed: int, device: torch.device, path: str) -> dict:
    return {
        "kind": kind,
        "config": config.to_dict(),
        "seed": settings.shifted_seed(seed),
        "device": device.type,
        "engine": path,
    }


def _encode(model: nn.Module) -> bytes:
    """The model's state as safetensors bytes (no pickle)."""
    return safetensors.torch.save(
        {n: t.detach().cpu().contiguous() for n, t in model.state_dict().items()}
    )


def _decode(value, model: nn.Module) -> None:
    """Load the state that :func:`_encode` wrote into ``model``; ValueError if it does not fit."""
    if not isinstance(value, bytes):
        raise TypeError("stored weights are not safetensors bytes")
    try:
        state = safetensors.torch.load(value)
    except (safetensors.SafetensorError, ValueError, TypeError) as err:
        raise ValueError(f"stored weights cannot be read: {err}") from None
    if set(state) != set(model.state_dict()):
        raise ValueError("stored weights do not match the network's parameters")
    model.load_state_dict(state)  # raises on a shape mismatch


def _load_history(k: str) -> History | None:
    value = cache.load(k)
    if value is None:
        return None
    try:
        return History.from_dict(value)
    except (TypeError, ValueError):
        return None  # not a history: counts as missing, rewritten after training


def _load_model(k: str, config: Config, seed: int, device: torch.device) -> MLP | None:
    value = cache.load(k)
    if value is None:
        return None
    model, _ = build(config, seed, "cpu")
    try:
        _decode(value, model)
    except (TypeError, ValueError, KeyError, RuntimeError):
        return None
    return model.to(device)


# ------------------------------------------------------------------------------- running
def _check_config(config) -> None:
    if not isinstance(config, Config):
        raise TypeError(f"config={config!r:.80}: expected an mla_course.config.Config")


def _check_seeds(seeds) -> list[int]:
    if isinstance(seeds, int | str | bytes):
        raise TypeError(f"seeds={seeds!r}: expected an iterable of seeds, e.g. (0, 1, 2)")
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give at least one seed")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds={seeds!r}: each seed once")
    for seed in seeds:
        settings.shifted_seed(seed)  # a ValueError naming the seed if torch cannot take it
    return seeds


def _run(pairs, engine_choice: str, device, *, models: bool = False):
    """``(history, model or None)`` for each ``(config, seed)`` pair: from the cache, else trained.

    Every configuration and seed is checked, and the engine path of each chosen,
    before anything is trained. Each run trained stores its history; with
    ``models=True`` its final weights too (see :func:`train_network`).
    """
    if engine_choice not in ENGINES:
        raise ValueError(f"engine={engine_choice!r}: expected one of {list(ENGINES)}")
    device = settings.get_device(device)
    pairs = list(pairs)
    paths = {}
    for config, _ in pairs:
        _check_config(config)
        if config not in paths:
            paths[config] = _path(config, engine_choice)

    def parts(kind, pair):
        return _parts(kind, *pair, device, paths[pair[0]])

    cached, done, todo = {}, {}, []
    for pair in dict.fromkeys(pairs):  # unique, in order
        cached[pair] = _load_history(cache.key(parts("history", pair)))
        model = None
        if cached[pair] is not None and models:
            model = _load_model(cache.key(parts("weights", pair)), *pair, device)
        if cached[pair] is None or (models and model is None):
            todo.append(pair)
        else:
            done[pair] = (cached[pair], model)

    _account(list(cached), trained=set(todo))

    def finish(pair, history, model):
        before = cached[pair]
        if before is not None and not _same_run(before, history):
            warnings.warn(
                f"{pair[0]!r} with seed {pair[1]} trained again to recover its weights, and "
                f"did not take the same steps as the cached run: the new run replaces it",
                RuntimeWarning,
                stacklevel=4,
            )
            before = None
        if before is None:  # a new run, or one that replaces a cached one
            cache.store(
                cache.key(parts("history", pair)), history.to_dict(), parts("history", pair)
            )
        if models:
            cache.store(cache.key(parts("weights", pair)), _encode(model), parts("weights", pair))
        done[pair] = (before or history, model if models else None)

    progress = settings.progress()  # None: on a terminal only; False: never
    groups: dict[tuple, list] = {}
    jobs = []
    for pair in todo:
        config = pair[0]
        if paths[config] == "batched":
            shape = tuple(getattr(config, f) for f in _SAME_IN_A_BATCH)
            groups.setdefault(shape, []).append(pair)
        else:
            jobs.append(("plain", [pair]))
    for items in groups.values():
        most = max(1, min(256, _FLOATS_PER_CALL // (items[0][0].batch_size * 784)))
        jobs += [("batched", items[i : i + most]) for i in range(0, len(items), most)]
    hide = None if progress is None else True
    for kind, chunk in tqdm(jobs, desc="training", unit="group", leave=False, disable=hide):
        if kind == "plain":
            finish(chunk[0], *_fit(*chunk[0], device, progress))
        else:
            histories, trained = _train_batched(chunk, device, models)
            for pair, history, model in zip(chunk, histories, trained, strict=True):
                finish(pair, history, model)
    return [done[pair] for pair in pairs]


def _account(pairs, trained) -> None:
    """Add these runs' network-steps and training FLOPs to the page's compute record
    (``MLA_COMPUTE_DIR``, set by the docs build): all of them, and those trained now."""
    folder = settings.compute_dir()
    if folder is None or not pairs:
        return
    row = {"runs": 0, "steps": 0, "flops": 0, "trained_runs": 0, "trained_flops": 0}
    for pair in pairs:
        config = pair[0]
        row["runs"] += 1
        row["steps"] += config.network_steps
        row["flops"] += config.training_flops
        if pair in trained:
            row["trained_runs"] += 1
            row["trained_flops"] += config.training_flops
    folder.mkdir(parents=True, exist_ok=True)
    page = Path(sys.argv[0]).stem if sys.argv and sys.argv[0] else "interactive"
    with (folder / f"{page}.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def _same_run(a: History, b: History) -> bool:
    """Whether two histories record the same training, step for step.

    The evaluation losses may differ in their last bits: the engine sums them in
    chunks whose size depends on how many networks it trains together.
    """
    same = ("step_loss", "train_acc", "test_acc", "diverged_at", "evaluated_on")
    return all(getattr(a, f) == getattr(b, f) for f in same)


def _train_batched(chunk, device: torch.device, models: bool):
    """Train the ``(config, seed)`` pairs of ``chunk`` together with the batched engine.

    Returns their histories, and their trained networks if ``models`` (else Nones).
    """
    members = []
    for config, seed in chunk:
        model, _ = build(config, seed, "cpu")  # the plain path's initial weights
        members.append(
            engine_lib.Member(
                model,
                config.optimizer,
                config.lr,
                _optimizer_kwargs(config),
                config.l1,
                settings.shifted_seed(seed),
            )
        )
    first = chunk[0][0]
    train, evaluation = load_data(first, device)
    histories, stack, order = engine_lib.train_many(
        members,
        train,
        evaluation,
        epochs=first.epochs,
        batch_size=first.batch_size,
        device=device,
        return_stack=True,
    )
    for (config, _), history in zip(chunk, histories, strict=True):
        history.evaluated_on = config.evaluate_on
    if not models:
        return histories, [None] * len(chunk)
    unstacked = stack.unstack()  # in the engine's order
    return histories, [unstacked[order.index(i)].to(device) for i in range(len(chunk))]


def sweep(
    configs: Mapping[str, Config],
    seeds: Iterable[int] = (0, 1, 2),
    *,
    engine: str = "auto",
    device=None,
) -> Table:
    """Train every configuration over ``seeds``; return a :class:`~mla_course.tables.Table`.

    ``configs`` maps labels to configurations. Every configuration is checked
    before any is trained. The runs the batched engine can take go to it
    together, ``k`` configurations over ``s`` seeds in one set of kernels where
    they share the data and architecture; the others run one by one in the plain
    loop. A run whose loss becomes NaN or infinite stops there and counts as
    diverged (``History.diverged_at``); the table never averages it in. Results
    are cached (``MLA_NO_CACHE=1`` recomputes). A progress bar shows on a
    terminal (``MLA_PROGRESS=0`` hides it).
    """
    if not isinstance(configs, Mapping) or not configs:
        raise ValueError(f"configs={configs!r:.80}: expected a non-empty dict of label: Config")
    seeds = _check_seeds(seeds)
    for label, config in configs.items():
        if not isinstance(config, Config):
            raise TypeError(f"configs[{label!r}]={config!r:.80}: expected a Config")
    pairs = [(config, s) for config in configs.values() for s in seeds]
    runs = iter(_run(pairs, engine, device))
    return Table(
        {
            label: Result(config, seeds, [next(runs)[0] for _ in seeds])
            for label, config in configs.items()
        }
    )


def train_network(
    config: Config, seed: int = 0, *, engine: str = "auto", device=None
) -> tuple[History, MLP]:
    """Train one network of ``config`` with ``seed``; return its history and that network.

    The run is the one :func:`sweep` makes for the same configuration and seed
    (same engine path, same cache entry): the history equals the sweep's, and
    the network is the one that history describes. Its weights are cached with
    it. For a run a sweep trained (history cached, weights not), the run is
    trained again alone and must take the very same steps; if it does not (a
    GPU may add in another order), a ``RuntimeWarning`` says so and the new
    run, history and network, replaces the cached one.
    """
    _check_config(config)
    _check_seeds([seed])
    history, model = _run([(config, seed)], engine, device, models=True)[0]
    return history, model
