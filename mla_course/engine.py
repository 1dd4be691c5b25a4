"""Train many MLPs of one architecture at once: stacked weights, batched matrix products.

A sweep of the book trains dozens of small networks that differ only by their
seed, activation, learning rate, optimiser or penalty. Trained one after the
other, each step of each network is a handful of tiny matrix products plus
the Python and launch overhead around them. Here the ``M`` networks are
*stacked*: layer ``l`` of every network is one tensor of shape
``(M, n_in, n_out)``, a step is one batched product per layer
(:func:`torch.baddbmm`) and one autograd pass for all of them, and the data
never leaves the device. On a GPU the whole step can be recorded once as a
CUDA graph and replayed, which removes the launch overhead too.

It computes the same thing as the plain loop (:func:`mla_course.train.fit`):

* the initial weights are taken from the models it is given (build them with
  :func:`mla_course.runs.build`, which seeds then constructs);
* each network sees its own mini-batches, in the order of
  ``torch.randperm(n, generator=torch.Generator().manual_seed(seed))`` drawn
  once per epoch, last partial batch kept (:func:`mla_course.data.iterate_batches`);
* the updates are the very functions of :mod:`mla_course.optim`
  (``adam_update``...), called on the stacked tensors: a hyper-parameter shared
  by a group of networks is passed as a number, one that differs as a tensor of
  shape ``(m, 1, 1)``, one value per network. The engine keeps only the state
  and the stacking; the L1 penalty is :func:`mla_course.penalties.l1_norm`
  on the stacked weights;
* after each epoch, every network is evaluated on the whole train and test
  splits, in chunks of 2048 rows like :func:`mla_course.train.evaluate`.

The results agree with the plain loop to float tolerance, not bit for bit: a
batched product adds in another order than a single one (``tests/test_engine.py``
checks the agreement). A network whose loss becomes NaN or infinite is
marked as diverged at that step, exactly as ``fit(on_divergence="stop")``
does; the others are not affected, since no operation mixes networks.

Public API (stable; :mod:`mla_course.runs` relies on it):

* :func:`unsupported` ``(config) -> str | None``: why the engine cannot run a
  configuration (duck-typed: any object with some of the attributes
  ``batch_norm``, ``dropout``, ``optimizer``, ``loss``, ``label_smoothing``,
  ``augment``), ``None`` if it can. The one place that decides it.
* :class:`Member` ``(model, optimizer, lr, optimizer_kwargs, l1, seed)``: one network.
* :func:`train_many` ``(members, train, test, *, epochs, batch_size=64, device=None,
  cuda_graph=None, return_stack=False, progress=None)``: one
  :class:`~mla_course.train.History` per member (and, with ``return_stack``,
  the trained :class:`StackedMLP` and the engine's order of the members).
* :data:`OPTIMIZERS`, derived from :data:`mla_course.optim.OPTIMIZERS`.
* :data:`COUNTS` and :data:`last_run`: what ran (see below).

CUDA graphs. ``MLA_CUDA_GRAPH`` says whether a run on a GPU records its step
as a graph: ``auto`` (the default; also ``1``/``on``), ``off`` (also ``0``),
or ``require``, which raises where the graph path cannot run (a failed
capture, or a device without CUDA) instead of going on eagerly. The engine
counts captures, replays and fallbacks in :data:`COUNTS` (since the process
started) and in :data:`last_run` (the last call), and logs one line per call
to the logger ``mla_course.engine`` naming the path that ran.

Not supported (use the plain loop): batch normalisation, dropout, losses other
than cross-entropy, label smoothing and batch transforms.

References: the stacked-weights trick is what ``torch.func.vmap`` over
``functional_call`` does for you (PyTorch's "model ensembling" tutorial);
writing it out with :func:`torch.baddbmm` keeps it readable and lets the
optimisers update all networks in a few element-wise kernels. CUDA graphs:
PyTorch's "CUDA Graphs" notes, "whole network capture".
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm.auto import tqdm

from . import optim as optim_lib
from . import settings
from .models import MLP, make_activation
from .penalties import l1_norm
from .settings import get_device
from .train import History

__all__ = [
    "COUNTS",
    "OPTIMIZERS",
    "GraphCounts",
    "Member",
    "RunInfo",
    "StackedMLP",
    "StackedOptimizer",
    "train_many",
    "unsupported",
]

logger = logging.getLogger("mla_course.engine")

# The optimisers the engine runs: all of mla_course.optim's, through their update functions.
OPTIMIZERS = tuple(optim_lib.OPTIMIZERS)

_EVAL_ROWS = 2048  # rows per evaluation chunk, as in train.fit


@dataclass
class Member:
    """One network of a batched run and how to train it.

    ``model`` holds the initial weights. ``optimizer``, ``lr`` and
    ``optimizer_kwargs`` are those of :func:`mla_course.optim.make_optimizer`
    (``weight_decay`` included); ``l1`` is the coefficient of the L1 penalty
    on the weights of the linear layers, added to the loss; ``seed`` sets the
    order of the mini-batches.
    """

    model: MLP
    optimizer: str = "sgd"
    lr: float = 0.1
    optimizer_kwargs: dict = field(default_factory=dict)
    l1: float = 0.0
    seed: int = 0


# What the engine can run: attribute -> (the only value it takes, what to say).
_SUPPORTED = {
    "batch_norm": (None, "only None"),
    "dropout": (0, "only 0"),
    "loss": ("cross_entropy", "only 'cross_entropy'"),
    "label_smoothing": (0, "only 0"),
    "augment": (None, "only None"),
}


def unsupported(config) -> str | None:
    """Why the engine cannot run ``config`` (``None`` if it can).

    ``config`` is a :class:`~mla_course.config.Config`, an :class:`~mla_course.models.MLP`
    or any object with some of the attributes ``batch_norm``, ``dropout``,
    ``loss``, ``label_smoothing``, ``augment`` and ``optimizer``; an attribute it
    lacks is taken to have the value the engine supports.
    """
    for name, (value, allowed) in _SUPPORTED.items():
        given = getattr(config, name, value)
        if given != value:
            return f"{name}={given!r} ({allowed} is supported)"
    optimizer = getattr(config, "optimizer", OPTIMIZERS[0])
    if optimizer not in OPTIMIZERS:
        return f"optimizer={optimizer!r} (the engine runs {list(OPTIMIZERS)})"
    return None


class StackedMLP:
    """``M`` MLPs of the same sizes as stacked tensors; the activation may differ per network.

    Layer ``l`` is ``weights[l]`` of shape ``(M, n_in, n_out)`` (the transpose of
    ``nn.Linear.weight``, so that ``x @ W`` is a batched product) and
    ``biases[l]`` of shape ``(M, 1, n_out)``. Each hidden layer applies the
    activations run by run (a run: consecutive networks with the same
    activation), so few runs are cheapest (the engine sorts networks by
    optimiser then activation). PReLU slopes are one ``(M, 1, 1)`` tensor per
    hidden layer, unused by the other networks.
    """

    def __init__(self, models: Sequence[MLP], device=None):
        if not models:
            raise ValueError("models is empty: give at least one MLP")
        for i, model in enumerate(models):
            if not isinstance(model, MLP):
                raise TypeError(
                    f"models[{i}] is a {type(model).__name__}: expected an mla_course.models.MLP"
                )
            reason = unsupported(model)
            if reason:
                raise ValueError(f"models[{i}]: {reason}")
            if model.sizes != models[0].sizes:
                raise ValueError(
                    f"models[{i}].sizes={model.sizes}: every model must have the sizes of "
                    f"models[0], {models[0].sizes}"
                )
        device = get_device(device)
        self.sizes, self.M = list(models[0].sizes), len(models)
        self.activations = [m.activation for m in models]
        with torch.no_grad():
            linears = [m.linears for m in models]
            self.weights = [
                torch.stack([lin[i].weight.T for lin in linears]).to(device).contiguous()
                for i in range(len(self.sizes) - 1)
            ]  # (M, n_in, n_out)
            self.biases = [
                torch.stack([lin[i].bias for lin in linears]).unsqueeze(1).to(device).contiguous()
                for i in range(len(self.sizes) - 1)
            ]  # (M, 1, n_out)
            self.slopes = []  # (M, 1, 1) per hidden layer, PReLU only
            if "prelu" in self.activations:
                for i in range(len(self.sizes) - 2):
                    rows = [_prelu_slope(m, i) for m in models]
                    self.slopes.append(torch.stack(rows).view(-1, 1, 1).to(device).contiguous())
        for p in self.parameters():
            p.requires_grad_(True)
        # Contiguous runs of networks sharing an activation: (start, stop, name, module).
        self.runs = []
        for i, name in enumerate(self.activations):
            if self.runs and self.runs[-1][2] == name:
                self.runs[-1][1] = i + 1
            else:
                self.runs.append([i, i + 1, name, make_activation(name)])

    def parameters(self) -> list[Tensor]:
        return [*self.weights, *self.biases, *self.slopes]

    def _activate(self, h: Tensor, layer: int) -> Tensor:
        parts = []
        for start, stop, name, module in self.runs:
            part = h if len(self.runs) == 1 else h[start:stop]
            if name == "prelu":  # nn.PReLU: x if x >= 0 else a * x
                slope = self.slopes[layer][start:stop]
                part = torch.where(part >= 0, part, slope * part)
            else:
                part = module(part)
            parts.append(part)
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def forward(self, x: Tensor) -> Tensor:
        """Scores ``(M, batch, classes)`` of every network for ``x`` of shape ``(M, batch, n_in)``,
        or ``(batch, n_in)`` shared by all networks."""
        last = len(self.weights) - 1
        for i, (W, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            if x.dim() == 2:
                x = x.expand(self.M, *x.shape)  # a view: no copy
            x = torch.baddbmm(b, x, W)  # (M, batch, n_out)
            if i < last:
                x = self._activate(x, i)
        return x

    __call__ = forward

    def unstack(self) -> list[MLP]:
        """The ``M`` networks as separate :class:`~mla_course.models.MLP` objects (on the CPU)."""
        out = []
        with torch.no_grad():
            for m in range(self.M):
                model = MLP(self.sizes, self.activations[m])
                for i, lin in enumerate(model.linears):
                    lin.weight.copy_(self.weights[i][m].T)
                    lin.bias.copy_(self.biases[i][m, 0])
                if self.activations[m] == "prelu":
                    prelus = [mod for mod in model.net if isinstance(mod, nn.PReLU)]
                    for i, mod in enumerate(prelus):
                        mod.weight.fill_(self.slopes[i][m].item())
                out.append(model)
        return out

    def __repr__(self) -> str:
        names = sorted(set(self.activations))
        return f"StackedMLP(M={self.M}, sizes={self.sizes}, activations={names})"


def _prelu_slope(model: MLP, layer: int) -> Tensor:
    if model.activation != "prelu":
        return torch.full((1,), 0.25)  # unused
    prelus = [m for m in model.net if isinstance(m, nn.PReLU)]
    w = prelus[layer].weight.detach()
    if w.numel() != 1:
        raise ValueError(f"PReLU with {w.numel()} slopes: only a single shared slope is supported")
    return w.reshape(1).cpu()


# ---------------------------------------------------------------------------
# The optimiser on stacked parameters: state and stacking only; the maths is
# mla_course.optim's.
# ---------------------------------------------------------------------------


def _shared_or_stacked(name: str, values: list, like: Tensor):
    """One hyper-parameter of a group: the number itself if every network has the same,
    else a tensor of shape ``(m, 1, 1)`` (the dtype and device of the parameters)."""
    if all(v == values[0] for v in values):
        return values[0]
    if any(isinstance(v, bool) for v in values):
        raise ValueError(f"{name} differs within a group of networks: {values}")
    return torch.tensor(values, dtype=like.dtype, device=like.device).view(-1, 1, 1)


# On the CPU the update runs on slices of at most this many numbers: a temporary of the
# update (``lr * g``...) then stays small, where one over a whole stack of hundreds of
# networks would be a fresh block of memory from the system at every step, and slow.
_CPU_SLICE = 1 << 18


class _Group:
    """Networks ``start:stop`` of the stack, trained by one optimiser of :mod:`mla_course.optim`.

    ``hypers`` has one dict per network (from :func:`mla_course.optim.hyper_parameters`);
    ``state[j]`` holds the state tensors of parameter ``j`` for these networks, and
    ``slices[j]`` what one call of the update function takes for parameter ``j``: all
    the networks of the group on a GPU, slices of them on the CPU (see ``_part``).
    """

    def __init__(self, name: str, start: int, stop: int, hypers: list[dict], params: list[Tensor]):
        self.name, self.start, self.stop = name, start, stop
        self.cls = optim_lib.OPTIMIZERS[name]
        self.hypers = {
            k: _shared_or_stacked(k, [h[k] for h in hypers], params[0]) for k in hypers[0]
        }
        self.weight_decay = self.hypers.pop("weight_decay")
        self.state = [
            {s: torch.zeros_like(p[start:stop]) for s in self.cls.state_names} for p in params
        ]
        self.slices = []
        M = len(params[0])
        for p, state in zip(params, self.state, strict=True):
            rows = stop - start
            if p.device.type == "cpu":
                rows = max(1, min(rows, _CPU_SLICE // p[0].numel()))
            self.slices.append(
                [self._part(state, a, min(a + rows, stop), M) for a in range(start, stop, rows)]
            )

    def _part(self, state: dict, a: int, b: int, M: int) -> tuple:
        """``(rows, state, hypers, weight_decay)`` of networks ``a:b`` of the stack: ``rows``
        is the slice of the stacked tensors (``None`` for all of them), ``weight_decay``
        ``None`` when there is none."""
        i, j = a - self.start, b - self.start  # rows of the group's own tensors
        hypers = {k: v[i:j] if isinstance(v, Tensor) else v for k, v in self.hypers.items()}
        wd = self.weight_decay
        wd = wd[i:j] if isinstance(wd, Tensor) else (wd or None)
        rows = None if (a, b) == (0, M) else slice(a, b)
        return rows, {k: t[i:j] for k, t in state.items()}, hypers, wd


class StackedOptimizer:
    """The optimisers of :mod:`mla_course.optim`, applied to stacked parameters.

    ``groups`` lists ``(name, start, stop, hypers)``: networks ``start:stop`` use
    optimiser ``name`` with per-network ``hypers`` (dicts from
    :func:`mla_course.optim.hyper_parameters`; a boolean, such as Adam's
    ``bias_correction``, must be the same within a group). With ``tensor_step=True``
    the step number ``t`` is given to the update functions as a device tensor,
    so that a CUDA graph replays its current value.
    """

    def __init__(self, params: list[Tensor], groups, *, tensor_step: bool = False):
        self.params = params
        self.groups = [_Group(name, a, b, hypers, params) for name, a, b, hypers in groups]
        self.tensor_step = tensor_step
        self.t = 0  # steps taken (the graph path advances it on each replay)
        self.t_tensor = torch.zeros((), dtype=torch.float64, device=params[0].device)

    def state_tensors(self) -> list[Tensor]:
        """Every tensor the update changes in place (to save and restore around a capture)."""
        state = [
            t for group in self.groups for per_param in group.state for t in per_param.values()
        ]
        return [*self.params, *state, self.t_tensor]

    def reset(self, index: int) -> None:
        """Zero the state of network ``index`` (after it diverged)."""
        for group in self.groups:
            if group.start <= index < group.stop:
                for per_param in group.state:
                    for t in per_param.values():
                        t[index - group.start].zero_()

    @torch.no_grad()
    def step(self, grads: Sequence[Tensor]) -> None:
        self.t += 1
        self.t_tensor.add_(1)
        t = self.t_tensor if self.tensor_step else self.t
        for group in self.groups:
            update = optim_lib.update_function(group.cls.rule)  # at each step: edits are seen
            steps = {"t": t} if group.cls.counts_steps else {}
            for p, g, slices in zip(self.params, grads, group.slices, strict=True):
                for rows, state, hypers, wd in slices:
                    ps, gs = (p, g) if rows is None else (p[rows], g[rows])
                    if wd is not None:
                        gs = optim_lib.add_weight_decay(gs, ps, wd)
                    update(ps, gs, **state, **steps, **hypers)

    def __repr__(self) -> str:
        parts = [f"{g.name}[{g.start}:{g.stop}]" for g in self.groups]
        return f"StackedOptimizer({', '.join(parts)}, step={self.t})"


# ---------------------------------------------------------------------------
# CUDA graphs: the setting, and what ran.
# ---------------------------------------------------------------------------


@dataclass
class GraphCounts:
    """CUDA-graph captures, replays and fallbacks (a failed capture, then eager steps)."""

    captures: int = 0
    replays: int = 0
    fallbacks: int = 0

    @property
    def path(self) -> str:
        """``"cuda-graph"`` (full batches replayed, each epoch's last partial batch eager),
        ``"eager-fallback"`` (a capture failed) or ``"eager"``."""
        if self.fallbacks:
            return "eager-fallback"
        return "cuda-graph" if self.captures else "eager"

    def add(self, other: GraphCounts) -> None:
        self.captures += other.captures
        self.replays += other.replays
        self.fallbacks += other.fallbacks


#: Every call of :func:`train_many` since the process started.
COUNTS = GraphCounts()


@dataclass
class RunInfo:
    """What one call of :func:`train_many` ran: ``path`` is :attr:`GraphCounts.path`."""

    path: str
    device: str
    networks: int
    counts: GraphCounts = field(default_factory=GraphCounts)


#: What the last call of :func:`train_many` ran (``None`` before the first).
last_run: RunInfo | None = None


def _progress_disabled(progress: bool | None) -> bool | None:
    """tqdm's ``disable``: ``progress`` if given, else ``MLA_PROGRESS`` (a terminal only)."""
    progress = settings.progress() if progress is None else progress
    return None if progress is None else not progress


# ---------------------------------------------------------------------------
# The training loop.
# ---------------------------------------------------------------------------


class _Trainer:
    """Holds the stack, the optimiser, the data and the step of one batched run."""

    def __init__(
        self,
        members: Sequence[Member],
        train,
        test,
        batch_size,
        device,
        cuda_graph,
        *,
        hypers=None,
        require=False,
    ):
        self.device = device
        self.net = StackedMLP([m.model for m in members], device)
        M = self.net.M
        if hypers is None:
            hypers = [_hypers(m) for m in members]
        groups, start = [], 0
        for i in range(1, M + 1):  # maximal runs of one optimiser with the same booleans
            if i == M or _group_key(members[i], hypers[i]) != _group_key(
                members[start], hypers[start]
            ):
                groups.append((members[start].optimizer, start, i, hypers[start:i]))
                start = i
        self.graph_mode, self.require = bool(cuda_graph), require
        self.opt = StackedOptimizer(self.net.parameters(), groups, tensor_step=self.graph_mode)
        l1 = [m.l1 for m in members]
        for c in l1:
            if isinstance(c, bool) or not isinstance(c, int | float) or not 0 <= c < math.inf:
                raise ValueError(f"l1={c!r}: expected a finite number >= 0")
        self.l1 = torch.tensor(l1, device=device) if any(l1) else None  # (M,)
        (self.X, self.y), (self.Xt, self.yt) = (_on(train, device), _on(test, device))
        self.batch_size = batch_size
        seeds = [m.seed for m in members]
        self.seeds = sorted(set(seeds))  # one batch order per distinct seed
        self.seed_index = torch.tensor([self.seeds.index(s) for s in seeds], device=device)
        self.generators = [torch.Generator().manual_seed(s) for s in self.seeds]
        self.graph = None
        self.counts = GraphCounts()

    def step(self, idx: Tensor) -> Tensor:
        """One training step of every network on rows ``idx`` (seeds, batch); returns the losses (M,)."""
        net, M = self.net, self.net.M
        if len(self.seeds) == 1:
            xb, yb = self.X[idx[0]], self.y[idx[0]].expand(M, -1)  # (batch, 784), (M, batch)
        else:
            rows = idx[self.seed_index]  # (M, batch)
            xb, yb = self.X[rows], self.y[rows]  # (M, batch, 784), (M, batch)
        scores = net(xb)  # (M, batch, classes)
        loss = F.cross_entropy(scores.flatten(0, 1), yb.flatten(), reduction="none")
        loss = loss.view(M, -1).mean(1)  # (M,): each network's mean over its batch
        if self.l1 is not None:
            loss = loss + self.l1 * l1_norm(net.weights, stacked=True)
        grads = torch.autograd.grad(loss.sum(), net.parameters())  # no network depends on another
        self.opt.step(grads)
        return loss.detach()

    def capture(self, perms: Tensor) -> None:
        """Record one full-batch step as a CUDA graph; the state is restored after the warm-up.

        The warm-up (cuBLAS handles, allocator) runs on a side stream, and the
        capture on that same stream, inside ``torch.cuda.device`` of the model's
        device. If the capture fails, the current stream is restored and training
        goes on eagerly (same results, more launches), unless
        ``MLA_CUDA_GRAPH=require``.
        """
        self.static_idx = perms[:, : self.batch_size].clone()
        saved = [t.clone() for t in self.opt.state_tensors()]
        t_saved = self.opt.t
        with torch.cuda.device(self.device):
            current = torch.cuda.current_stream(self.device)
            side = torch.cuda.Stream(self.device)
            try:
                side.wait_stream(current)
                with torch.cuda.stream(side):
                    for _ in range(3):
                        self.step(self.static_idx)
                current.wait_stream(side)
                graph = torch.cuda.CUDAGraph()
                with torch.cuda.graph(graph, stream=side):
                    self.static_loss = self.step(self.static_idx)
                self.graph = graph
                self.counts.captures += 1
            except RuntimeError as err:
                torch.cuda.set_stream(current)  # a failed capture_end leaves the side stream set
                if self.require:
                    raise RuntimeError(
                        f"MLA_CUDA_GRAPH=require: the CUDA graph capture failed ({err})"
                    ) from err
                self.graph, self.graph_mode = None, False
                self.counts.fallbacks += 1
                logger.warning("CUDA graph capture failed (%s); training without it", err)
            torch.cuda.synchronize(self.device)
            with torch.no_grad():
                for t, s in zip(self.opt.state_tensors(), saved, strict=True):
                    t.copy_(s)
            self.opt.t = t_saved
            torch.cuda.synchronize(self.device)

    def epoch(self, losses: Tensor, bar=None) -> None:
        """One epoch; step losses go to ``losses`` (steps, M) on the device."""
        n, B = len(self.X), self.batch_size
        perms = torch.stack([torch.randperm(n, generator=g) for g in self.generators])
        perms = perms.to(self.device)  # (seeds, n)
        if self.graph_mode and self.graph is None and n >= B:
            self.capture(perms)
        for k, start in enumerate(range(0, n, B)):
            idx = perms[:, start : start + B]
            if self.graph is not None and idx.shape[1] == B:
                self.static_idx.copy_(idx)
                self.graph.replay()
                self.opt.t += 1  # the replayed step advanced t_tensor, not the Python counter
                self.counts.replays += 1
                losses[k].copy_(self.static_loss)
            else:  # eager, and the last partial batch in graph mode
                losses[k] = self.step(idx)
            if bar is not None:
                bar.update()

    @torch.no_grad()
    def evaluate(self, X: Tensor, y: Tensor) -> tuple[list[float], list[float]]:
        """Mean loss and accuracy of every network on ``(X, y)``, in chunks like train.evaluate."""
        M = self.net.M
        width = max(self.net.sizes)
        budget = (1 << 28) if self.device.type == "cuda" else (1 << 23)  # floats per activation
        rows = _EVAL_ROWS
        while rows > 64 and M * rows * width > budget:
            rows //= 2
        total = torch.zeros(M, dtype=torch.float64, device=self.device)
        correct = torch.zeros(M, dtype=torch.int64, device=self.device)
        for i in range(0, len(X), rows):
            scores = self.net(X[i : i + rows])  # (M, rows, classes)
            yc = y[i : i + rows].expand(M, -1)
            loss = F.cross_entropy(scores.flatten(0, 1), yc.flatten(), reduction="none")
            total += loss.view(M, -1).sum(1).double()
            correct += (scores.argmax(-1) == yc).sum(1)
        n = len(X)
        return (total / n).tolist(), (correct.double() / n).tolist()


def _hypers(member: Member) -> dict:
    """The member's checked hyper-parameters, by :func:`mla_course.optim.hyper_parameters`."""
    if member.optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer={member.optimizer!r}: the engine runs {list(OPTIMIZERS)}")
    return optim_lib.hyper_parameters(member.optimizer, member.lr, **dict(member.optimizer_kwargs))


# Hyper-parameters that enter an update linearly: stacked as float32 per network, they give
# the steps of the same number as a Python float. Any other (Adam's betas, RMSProp's alpha:
# ``1 - beta`` rounds differently in float32) is shared within a group (probe finding 3).
_STACKABLE = ("lr", "momentum", "eps", "weight_decay")


def _group_key(member: Member, hypers: dict) -> tuple:
    """Networks of one group share the optimiser, its booleans and its non-linear numbers."""
    shared = sorted((k, v) for k, v in hypers.items() if k not in _STACKABLE)
    return (member.optimizer, tuple(shared))


def _on(data, device) -> tuple[Tensor, Tensor]:
    X, y = data
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} rows but y has {len(y)}: they must match")
    return X.to(device).flatten(1), y.to(device)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def train_many(
    members: Sequence[Member],
    train: tuple[Tensor, Tensor],
    test: tuple[Tensor, Tensor],
    *,
    epochs: int,
    batch_size: int = 64,
    device=None,
    cuda_graph: bool | None = None,
    return_stack: bool = False,
    progress: bool | None = None,
):
    """Train every member together; return one :class:`~mla_course.train.History` per member.

    ``train`` and ``test`` are ``(X, y)`` tensors, moved once to ``device``. The
    histories come back in the order of ``members`` and hold what
    ``fit(..., on_divergence="stop")`` records, except ``time``: the wall time
    of the whole batched run divided by the number of networks (the cost of one
    network, amortised). ``cuda_graph=None`` follows ``MLA_CUDA_GRAPH`` (see the
    module's docstring): a CUDA graph on a GPU unless it says ``off``, never on
    the CPU. With ``return_stack=True`` also returns the trained
    :class:`StackedMLP` (networks in the engine's order: sorted by optimiser and
    activation) and that order. A progress bar over the steps shows on a
    terminal (``progress=None``; ``MLA_PROGRESS=0`` hides it).
    """
    global last_run
    members = list(members)
    if not members:
        raise ValueError("members is empty: give at least one Member")
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
        raise ValueError(f"epochs={epochs!r}: expected a non-negative integer")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
        raise ValueError(f"batch_size={batch_size!r}: expected a positive integer")
    device = get_device(device)
    mode = settings.cuda_graph_mode()
    if mode == "require" and device.type != "cuda" and cuda_graph is not False:
        raise ValueError(
            f"MLA_CUDA_GRAPH=require: device={str(device)!r} has no CUDA graphs; "
            f"train on 'cuda', or unset MLA_CUDA_GRAPH"
        )
    if cuda_graph is None:
        cuda_graph = device.type == "cuda" and mode != "off"
    if cuda_graph and device.type != "cuda":
        raise ValueError(f"cuda_graph=True needs a CUDA device, not device={str(device)!r}")
    # Contiguous groups: one optimiser (and its booleans) per group, activation runs within it.
    hypers = [_hypers(m) for m in members]
    order = sorted(
        range(len(members)),
        key=lambda i: (*_group_key(members[i], hypers[i]), members[i].model.activation),
    )
    trainer = _Trainer(
        [members[i] for i in order],
        train,
        test,
        batch_size,
        device,
        cuda_graph,
        hypers=[hypers[i] for i in order],
        require=mode == "require",
    )
    M = len(members)
    n = len(trainer.X)
    steps = math.ceil(n / batch_size)
    histories = [History() for _ in range(M)]
    alive = [True] * M
    elapsed = 0.0
    bar = tqdm(
        total=epochs * steps,
        desc=f"{M} network{'s' if M > 1 else ''}",
        unit="step",
        leave=False,
        disable=_progress_disabled(progress),
        file=sys.stderr,
    )
    for epoch in range(epochs):
        losses = torch.empty(steps, M, device=device)
        _sync(device)
        start = time.perf_counter()
        trainer.epoch(losses, None if bar.disable else bar)
        _sync(device)
        elapsed += time.perf_counter() - start
        losses = losses.cpu()
        finite = torch.isfinite(losses)
        for m in range(M):
            if not alive[m]:
                continue
            if not finite[:, m].all():  # as fit: the epoch's losses are lost, diverged_at is global
                alive[m] = False
                histories[m].diverged_at = epoch * steps + int((~finite[:, m]).nonzero()[0, 0])
                with torch.no_grad():  # keep the dead network finite; nothing reads it again
                    for p in trainer.net.parameters():
                        p[m].zero_()
                trainer.opt.reset(m)
            else:
                histories[m].step_loss += losses[:, m].tolist()
        if not any(alive):
            break
        for split, (X, y) in (
            ("train", (trainer.X, trainer.y)),
            ("test", (trainer.Xt, trainer.yt)),
        ):
            loss, acc = trainer.evaluate(X, y)
            for m in range(M):
                if alive[m]:
                    getattr(histories[m], f"{split}_loss").append(loss[m])
                    getattr(histories[m], f"{split}_acc").append(acc[m])
        for m in range(M):
            if alive[m]:
                histories[m].time.append(elapsed / M)
    bar.close()
    path = trainer.counts.path
    last_run = RunInfo(path, str(device), M, trainer.counts)
    COUNTS.add(trainer.counts)
    c = trainer.counts
    logger.info(
        "train_many: %d networks on %s, %s path (%d captures, %d replays, %d fallbacks)",
        M,
        device,
        path,
        c.captures,
        c.replays,
        c.fallbacks,
    )
    # Back to the caller's order.
    out = [None] * M
    for position, i in enumerate(order):
        out[i] = histories[position]
    return (out, trainer.net, order) if return_stack else out
