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
  :func:`mla_course.experiments.build`, which seeds then constructs);
* each network sees its own mini-batches, in the order of
  ``torch.randperm(n, generator=torch.Generator().manual_seed(seed))`` drawn
  once per epoch, last partial batch kept (:func:`mla_course.data.iterate_batches`);
* the optimisers are those of :mod:`mla_course.optim`; when a hyper-parameter
  is shared by the whole group its pure update function is called on the
  stacked tensors (the functions are element-wise), otherwise the same maths
  runs with per-network hyper-parameters of shape ``(m, 1, 1)``;
* after each epoch, every network is evaluated on the whole train and test
  splits, in chunks of 2048 rows like :func:`mla_course.train.evaluate`.

The results agree with the plain loop to float tolerance, not bit for bit: a
batched product adds in another order than a single one (``tests/test_engine.py``
checks the agreement). A network whose loss becomes NaN or infinite is
marked as diverged at that step, exactly as ``fit(on_divergence="stop")``
does; the others are not affected, since no operation mixes networks.

Not supported (use the plain loop): batch normalisation and dropout.

References: the stacked-weights trick is what ``torch.func.vmap`` over
``functional_call`` does for you (PyTorch's "model ensembling" tutorial);
writing it out with :func:`torch.baddbmm` keeps it readable and lets the
optimisers update all networks in a few element-wise kernels. CUDA graphs:
PyTorch's "CUDA Graphs" notes, "whole network capture".
"""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from . import optim as optim_lib
from .models import MLP, make_activation
from .train import History
from .utils import get_device

__all__ = ["OPTIMIZERS", "Member", "StackedMLP", "StackedOptimizer", "train_many", "unsupported"]

# The optimisers the engine runs, by the names of mla_course.optim.OPTIMIZERS.
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam")

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


def unsupported(model: nn.Module) -> str | None:
    """Why the engine cannot train ``model`` (``None`` if it can)."""
    if not isinstance(model, MLP):
        return f"model is a {type(model).__name__}, not an mla_course.models.MLP"
    if model.batch_norm is not None:
        return f"batch_norm={model.batch_norm!r} (only None is supported)"
    if model.dropout:
        return f"dropout={model.dropout!r} (only 0 is supported)"
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
# Optimisers on stacked parameters.
# ---------------------------------------------------------------------------


def _hyper_parameters(name: str, lr: float, kwargs: dict) -> dict:
    """The full, checked hyper-parameters of one optimiser, defaults included.

    Built by :func:`mla_course.optim.make_optimizer` on a dummy parameter, so the
    defaults and the argument checks are those of the plain path.
    """
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer={name!r}: the engine supports {list(OPTIMIZERS)}")
    dummy = torch.zeros(1, requires_grad=True)
    group = dict(optim_lib.make_optimizer(name, [dummy], lr, **kwargs).param_groups[0])
    del group["params"]
    if "betas" in group:
        group["beta1"], group["beta2"] = group.pop("betas")
    if "bias_correction" in group:
        group["bias_correction"] = float(bool(group["bias_correction"]))
    return {k: float(v) for k, v in group.items() if isinstance(v, int | float | bool)}


class _Group:
    """Networks ``start:stop`` of the stack, all trained by optimiser ``name``."""

    def __init__(self, name, start, stop, hypers: list[dict], device):
        self.name, self.start, self.stop = name, start, stop
        keys = sorted(hypers[0])
        self.uniform = (
            {k: hypers[0][k] for k in keys} if all(h == hypers[0] for h in hypers) else None
        )
        # float64 copies, from which the float32 factors are derived as the plain path does
        # (e.g. 1 - beta2 in double, then rounded once).
        h64 = {
            k: torch.tensor([h[k] for h in hypers], dtype=torch.float64, device=device).view(
                -1, 1, 1
            )
            for k in keys
        }
        self.h64 = h64
        f32 = {}
        f32["neg_lr"] = (-h64["lr"]).float()
        f32["weight_decay"] = h64["weight_decay"].float()
        self.any_weight_decay = bool((h64["weight_decay"] != 0).any())
        if name in ("momentum", "nesterov"):
            f32["momentum"] = h64["momentum"].float()
        if name in ("adagrad", "rmsprop", "adam"):
            f32["eps"] = h64["eps"].float()
        if name == "rmsprop":
            f32["alpha"] = h64["alpha"].float()
            f32["one_minus_alpha"] = (1 - h64["alpha"]).float()
        if name == "adam":
            f32["one_minus_beta1"] = (1 - h64["beta1"]).float()
            f32["beta2"] = h64["beta2"].float()
            f32["one_minus_beta2"] = (1 - h64["beta2"]).float()
        self.f32 = f32


class StackedOptimizer:
    """The optimisers of :mod:`mla_course.optim`, applied to stacked parameters.

    ``groups`` lists ``(name, start, stop, hypers)`` where networks ``start:stop``
    use optimiser ``name`` with per-network ``hypers`` (dicts from
    ``_hyper_parameters``). With ``tensor_step=True`` Adam's step counter is a
    device tensor, so that a CUDA graph can replay the update.
    """

    def __init__(self, params: list[Tensor], groups, *, tensor_step: bool = False):
        self.params = params
        device = params[0].device
        self.groups = [_Group(name, a, b, hypers, device) for name, a, b, hypers in groups]
        self.tensor_step = tensor_step
        self.t = 0  # Python step counter (eager path)
        self.t_tensor = torch.zeros((), dtype=torch.float64, device=device)  # graph path
        self.state: dict[str, list[Tensor]] = {}
        names = {g.name for g in self.groups}
        if names & {"momentum", "nesterov"}:
            self.state["v"] = [torch.zeros_like(p) for p in params]
        if names & {"adagrad", "rmsprop", "adam"}:
            self.state["r"] = [torch.zeros_like(p) for p in params]
        if "adam" in names:
            self.state["s"] = [torch.zeros_like(p) for p in params]

    def state_tensors(self) -> list[Tensor]:
        """Every tensor the update changes in place (to save and restore around a capture)."""
        return [*self.params, *(t for ts in self.state.values() for t in ts), self.t_tensor]

    def reset(self, index: int) -> None:
        """Zero the state of network ``index`` (after it diverged)."""
        for ts in self.state.values():
            for t in ts:
                t[index].zero_()

    @torch.no_grad()
    def step(self, grads: Sequence[Tensor]) -> None:
        self.t += 1
        self.t_tensor.add_(1)
        for j, (p, g) in enumerate(zip(self.params, grads, strict=True)):
            for group in self.groups:
                self._update(group, j, p[group.start : group.stop], g[group.start : group.stop])

    def _update(self, group: _Group, j: int, p: Tensor, g: Tensor) -> None:
        a, b, name, u, f = group.start, group.stop, group.name, group.uniform, group.f32
        st = {k: v[j][a:b] for k, v in self.state.items()}
        pure = u is not None and not (name == "adam" and self.tensor_step)
        if pure:  # the very functions of the plain path, on the stacked tensors
            if u["weight_decay"] != 0:
                g = g.add(p, alpha=u["weight_decay"])
            if name == "sgd":
                optim_lib.sgd_update(p, g, u["lr"])
            elif name == "momentum":
                optim_lib.momentum_update(p, g, st["v"], u["lr"], u["momentum"])
            elif name == "nesterov":
                optim_lib.nesterov_update(p, g, st["v"], u["lr"], u["momentum"])
            elif name == "adagrad":
                optim_lib.adagrad_update(p, g, st["r"], u["lr"], u["eps"])
            elif name == "rmsprop":
                optim_lib.rmsprop_update(p, g, st["r"], u["lr"], u["alpha"], u["eps"])
            else:
                optim_lib.adam_update(
                    p,
                    g,
                    st["s"],
                    st["r"],
                    self.t,
                    u["lr"],
                    u["beta1"],
                    u["beta2"],
                    u["eps"],
                    bool(u["bias_correction"]),
                )
            return
        # The same maths with hyper-parameters of shape (m, 1, 1), one per network, in the
        # plain path's order of operations; addcmul_/addcdiv_ fuse passes over the weights.
        if group.any_weight_decay:
            g = g.addcmul(p, f["weight_decay"])  # g + wd * theta
        neg_lr = f["neg_lr"]
        if name == "sgd":  # theta <- theta - lr * g
            p.addcmul_(g, neg_lr)
        elif name == "momentum":  # v <- alpha v - lr g; theta <- theta + v
            st["v"].mul_(f["momentum"]).addcmul_(g, neg_lr)
            p.add_(st["v"])
        elif name == "nesterov":  # look-ahead form, see optim.nesterov_update
            st["v"].mul_(f["momentum"]).addcmul_(g, neg_lr)
            p.addcmul_(st["v"], f["momentum"]).addcmul_(g, neg_lr)
        elif name == "adagrad":  # r <- r + g^2; theta <- theta - lr g / (eps + sqrt r)
            st["r"].addcmul_(g, g)
            p.addcdiv_(g * neg_lr, st["r"].sqrt().add_(f["eps"]))
        elif name == "rmsprop":  # r <- alpha r + (1 - alpha) g^2
            st["r"].mul_(f["alpha"]).addcmul_(g * f["one_minus_alpha"], g)
            p.addcdiv_(g * neg_lr, st["r"].sqrt().add_(f["eps"]))
        else:  # adam, with bias correction where asked
            h = group.h64
            t = self.t_tensor if self.tensor_step else float(self.t)
            corrected = h["bias_correction"] != 0
            step_size = torch.where(corrected, h["lr"] / (1 - h["beta1"] ** t), h["lr"])
            bc2 = torch.where(corrected, torch.sqrt(1 - h["beta2"] ** t), torch.ones_like(h["lr"]))
            st["s"].lerp_(g, f["one_minus_beta1"])
            st["r"].mul_(f["beta2"]).addcmul_(g * f["one_minus_beta2"], g)
            denom = (st["r"].sqrt() / bc2.float()).add_(f["eps"])
            p.addcdiv_(st["s"] * (-step_size).float(), denom)

    def __repr__(self) -> str:
        parts = [f"{g.name}[{g.start}:{g.stop}]" for g in self.groups]
        return f"StackedOptimizer({', '.join(parts)}, step={self.t})"


# ---------------------------------------------------------------------------
# The training loop.
# ---------------------------------------------------------------------------


class _Trainer:
    """Holds the stack, the optimiser, the data and the step of one batched run."""

    def __init__(self, members: Sequence[Member], train, test, batch_size, device, cuda_graph):
        self.device = device
        self.net = StackedMLP([m.model for m in members], device)
        M = self.net.M
        groups, start = [], 0
        for i in range(1, M + 1):
            if i == M or members[i].optimizer != members[start].optimizer:
                hypers = [
                    _hyper_parameters(m.optimizer, m.lr, dict(m.optimizer_kwargs))
                    for m in members[start:i]
                ]
                groups.append((members[start].optimizer, start, i, hypers))
                start = i
        if len({g[0] for g in groups}) != len(groups):
            raise ValueError("networks with the same optimizer must be contiguous; sort them first")
        self.graph_mode = bool(cuda_graph)
        self.opt = StackedOptimizer(self.net.parameters(), groups, tensor_step=self.graph_mode)
        l1 = [float(m.l1) for m in members]
        if any(c < 0 for c in l1):
            raise ValueError(f"l1={min(l1)!r}: expected a number >= 0")
        self.l1 = torch.tensor(l1, device=device) if any(l1) else None  # (M,)
        (self.X, self.y), (self.Xt, self.yt) = (_on(train, device), _on(test, device))
        self.batch_size = batch_size
        seeds = [m.seed for m in members]
        self.seeds = sorted(set(seeds))  # one batch order per distinct seed
        self.seed_index = torch.tensor([self.seeds.index(s) for s in seeds], device=device)
        self.generators = [torch.Generator().manual_seed(s) for s in self.seeds]
        self.graph = None

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
            loss = loss + self.l1 * sum(W.abs().sum((1, 2)) for W in net.weights)
        grads = torch.autograd.grad(loss.sum(), net.parameters())  # no network depends on another
        self.opt.step(grads)
        return loss.detach()

    def capture(self, perms: Tensor) -> None:
        """Record one full-batch step as a CUDA graph; the state is restored after the warm-up.

        If the capture fails, say so and go on eagerly: same results, more launches.
        """
        self.static_idx = perms[:, : self.batch_size].clone()
        saved = [t.clone() for t in self.opt.state_tensors()]
        t_saved = self.opt.t
        try:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # warm-up (cuBLAS handles, allocator) off the capture
                for _ in range(3):
                    self.step(self.static_idx)
            torch.cuda.current_stream().wait_stream(side)
            self.graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(self.graph):
                self.static_loss = self.step(self.static_idx)
        except RuntimeError as err:
            self.graph, self.graph_mode = None, False
            warnings.warn(f"CUDA graph capture failed ({err}); training without it", stacklevel=3)
        torch.cuda.synchronize(self.device)
        with torch.no_grad():
            for t, s in zip(self.opt.state_tensors(), saved, strict=True):
                t.copy_(s)
        self.opt.t = t_saved
        torch.cuda.synchronize(self.device)

    def epoch(self, losses: Tensor) -> None:
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
                losses[k].copy_(self.static_loss)
            else:  # eager, and the last partial batch in graph mode
                losses[k] = self.step(idx)

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
):
    """Train every member together; return one :class:`~mla_course.train.History` per member.

    ``train`` and ``test`` are ``(X, y)`` tensors, moved once to ``device``. The
    histories come back in the order of ``members`` and hold what
    ``fit(..., on_divergence="stop")`` records, except ``time``: the wall time
    of the whole batched run divided by the number of networks (the cost of one
    network, amortised). ``cuda_graph=None`` uses a CUDA graph on a GPU (unless
    the environment sets ``MLA_CUDA_GRAPH=0``) and never on the CPU. With ``return_stack=True`` also returns the trained
    :class:`StackedMLP` (networks in the engine's order: sorted by optimiser and
    activation) and that order.
    """
    members = list(members)
    if not members:
        raise ValueError("members is empty: give at least one Member")
    if not isinstance(epochs, int) or epochs < 0:
        raise ValueError(f"epochs={epochs!r}: expected a non-negative integer")
    if not isinstance(batch_size, int) or batch_size <= 0:
        raise ValueError(f"batch_size={batch_size!r}: expected a positive integer")
    device = get_device(device)
    if cuda_graph is None:
        cuda_graph = device.type == "cuda" and os.environ.get("MLA_CUDA_GRAPH", "1") != "0"
    if cuda_graph and device.type != "cuda":
        raise ValueError(f"cuda_graph=True needs a CUDA device, not device={str(device)!r}")
    # Contiguous groups: one optimiser group, and activation runs within it.
    order = sorted(
        range(len(members)), key=lambda i: (members[i].optimizer, members[i].model.activation)
    )
    sorted_members = [members[i] for i in order]
    trainer = _Trainer(sorted_members, train, test, batch_size, device, cuda_graph)
    M = len(members)
    n = len(trainer.X)
    steps = math.ceil(n / batch_size)
    histories = [History() for _ in range(M)]
    alive = [True] * M
    elapsed = 0.0
    for epoch in range(epochs):
        losses = torch.empty(steps, M, device=device)
        _sync(device)
        start = time.perf_counter()
        trainer.epoch(losses)
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
    # Back to the caller's order.
    out = [None] * M
    for position, i in enumerate(order):
        out[i] = histories[position]
    return (out, trainer.net, order) if return_stack else out
