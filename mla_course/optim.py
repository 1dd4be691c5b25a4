"""The lecture's optimisers, from scratch: SGD, momentum, Nesterov, AdaGrad, RMSProp, Adam.

Each algorithm is a small pure function that updates tensors in place
(:func:`sgd_update`, :func:`momentum_update`, ...), written in the lecture's
notation (the slides follow Goodfellow, Bengio and Courville, *Deep Learning*,
chapter 8). A thin :class:`torch.optim.Optimizer` subclass wraps each one, so
``Adam(model.parameters(), lr=1e-3)`` drops into any PyTorch training loop.
The functions are element-wise, so they work unchanged on parameters stacked
along a leading "network" axis, with a hyper-parameter given as a number or as
one value per network: :mod:`mla_course.engine` trains many networks at once
with these very functions.

Every class takes the same steps as its ``torch.optim`` counterpart, to float
precision (``tests/test_optim.py`` checks it):

=================  ==================================================
this module        torch.optim
=================  ==================================================
``SGD``            ``SGD(lr)``
``Momentum``       ``SGD(lr, momentum)``
``Nesterov``       ``SGD(lr, momentum, nesterov=True)``
``AdaGrad``        ``Adagrad(lr, eps)``
``RMSProp``        ``RMSprop(lr, alpha, eps)``
``Adam``           ``Adam(lr, betas, eps)``; ``bias_correction=False``
                   has no torch counterpart
=================  ==================================================

``weight_decay`` is an L2 penalty ``weight_decay / 2 * ||theta||^2`` added to
the loss: its gradient ``weight_decay * theta`` is added to ``g`` before the
update, as in ``torch.optim`` (not the decoupled decay of AdamW).

Sources: Polyak (1964) for momentum, Nesterov (1983) and Sutskever et al.
(2013) for the look-ahead form, Duchi et al. (2011) for AdaGrad, Hinton's
lecture 6e (2012) for RMSProp, Kingma and Ba (2015) for Adam.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Iterable

import torch
from torch import Tensor

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "AdaGrad",
    "Adam",
    "Momentum",
    "Nesterov",
    "RMSProp",
    "adagrad_update",
    "adam_update",
    "add_weight_decay",
    "hyper_parameters",
    "make_optimizer",
    "momentum_update",
    "nesterov_update",
    "rmsprop_update",
    "sgd_update",
    "update_function",
]


# ---------------------------------------------------------------------------
# The maths: one pure function per algorithm, in place on p (parameters) and
# the state tensors; g is the gradient. All tensors have the same shape.
#
# A hyper-parameter is a number, or a tensor that broadcasts against p: the
# batched engine (mla_course.engine) stacks M networks along a first axis and
# calls these very functions with a learning rate of shape (M, 1, 1), say, one
# per network. Adam's step number t is an int, or a tensor on the device (a
# CUDA graph replays the tensor's current value; it would freeze a number).
# ---------------------------------------------------------------------------


Hyper = float | Tensor  # a hyper-parameter: a number, or one value per network


def sgd_update(p: Tensor, g: Tensor, lr: Hyper) -> None:
    """Gradient descent: ``theta <- theta - rho * g``."""
    if isinstance(lr, Tensor):  # one step size per network, shape (M, 1, 1)
        p.addcmul_(g, lr, value=-1)
    else:  # one pass over the weights, no temporary
        p.add_(g, alpha=-lr)


def momentum_update(p: Tensor, g: Tensor, v: Tensor, lr: Hyper, momentum: Hyper) -> None:
    """Momentum (Polyak's heavy ball), lecture notation with ``alpha = momentum``, ``rho = lr``.

    ``v <- alpha * v - rho * g`` then ``theta <- theta + v``. The velocity ``v``
    is an exponential moving average of past steps. ``torch.optim.SGD`` keeps
    ``b = -v / rho`` instead (``b <- alpha * b + g``, ``theta <- theta - rho * b``):
    the same steps while ``rho`` is constant.
    """
    v.mul_(momentum).sub_(lr * g)
    p.add_(v)


def nesterov_update(p: Tensor, g: Tensor, v: Tensor, lr: Hyper, momentum: Hyper) -> None:
    """Nesterov momentum, in the look-ahead form of Sutskever et al. (2013).

    The lecture writes ``v <- alpha * v - rho * grad L(theta + alpha * v)``,
    ``theta <- theta + v``: the gradient is taken at the look-ahead point.
    Storing that point, ``p = theta + alpha * v``, as the parameters means the
    usual gradient ``g = grad L(p)`` is the one needed, and the update becomes

        ``v <- alpha * v - rho * g``;  ``p <- p + alpha * v - rho * g``

    (new ``v`` on the right), which is ``SGD(nesterov=True)`` with ``b = -v / rho``.
    """
    v.mul_(momentum).sub_(lr * g)
    p.add_(momentum * v - lr * g)


def adagrad_update(p: Tensor, g: Tensor, r: Tensor, lr: Hyper, eps: Hyper) -> None:
    """AdaGrad (Duchi et al., 2011; Deep Learning book, algorithm 8.4).

    ``r <- r + g * g`` (the history of squared gradients, per parameter) then
    ``theta <- theta - eps_lr / (delta + sqrt(r)) * g``, where the book's global
    rate ``epsilon`` is ``lr`` here and its ``delta`` is ``eps``. ``r`` only grows,
    so the effective step ``lr / (delta + sqrt(r))`` only shrinks.
    """
    r.addcmul_(g, g)
    p.sub_(lr * g / (r.sqrt() + eps))


def rmsprop_update(p: Tensor, g: Tensor, r: Tensor, lr: Hyper, alpha: Hyper, eps: Hyper) -> None:
    """RMSProp (Hinton, 2012; Deep Learning book, algorithm 8.5).

    ``r <- rho * r + (1 - rho) * g * g`` (an exponential moving average, so old
    gradients are forgotten, unlike AdaGrad) then ``theta <- theta - lr * g /
    (sqrt(r) + delta)``. The book's decay rate ``rho`` is torch's ``alpha``. The
    book puts ``delta`` inside the square root, ``sqrt(delta + r)``; torch (and
    this function) adds it outside, ``sqrt(r) + delta``, which with ``delta =
    1e-8`` changes nothing unless ``r`` is about ``1e-16``. ``r.lerp_(x, w)`` is
    ``r <- r + w * (x - r)``, that is ``(1 - w) * r + w * x``.
    """
    r.lerp_(g * g, 1 - alpha)
    p.sub_(lr * g / (r.sqrt() + eps))


def adam_update(
    p: Tensor,
    g: Tensor,
    s: Tensor,
    r: Tensor,
    t: int | Tensor,
    lr: Hyper,
    beta1: Hyper,
    beta2: Hyper,
    eps: Hyper,
    bias_correction: bool = True,
) -> None:
    """Adam (Kingma and Ba, 2015; Deep Learning book, algorithm 8.7), step number ``t >= 1``.

    ``s <- rho1 * s + (1 - rho1) * g`` (first moment, a momentum) and
    ``r <- rho2 * r + (1 - rho2) * g * g`` (second moment, as in RMSProp), where
    the book's ``rho1, rho2`` are torch's ``betas``. Both start at 0, so they
    are biased towards 0 at first; the bias correction divides them by
    ``1 - rho1**t`` and ``1 - rho2**t``. Then ``theta <- theta - lr * s_hat /
    (sqrt(r_hat) + delta)``. As in the paper and torch, ``delta`` is added
    outside the square root (the book writes ``sqrt(r_hat + delta)``).
    """
    s.lerp_(g, 1 - beta1)
    r.lerp_(g * g, 1 - beta2)
    if bias_correction:
        s_hat, r_hat = s / (1 - beta1**t), r / (1 - beta2**t)
    else:
        s_hat, r_hat = s, r
    p.sub_(lr * s_hat / (r_hat.sqrt() + eps))


def add_weight_decay(g: Tensor, p: Tensor, weight_decay: Hyper) -> Tensor:
    """The gradient with an L2 penalty ``weight_decay / 2 * ||theta||^2`` added to the loss.

    Its gradient ``weight_decay * theta`` is added to ``g`` before the update, as
    in ``torch.optim`` (not the decoupled decay of AdamW).
    """
    return g + weight_decay * p


# ---------------------------------------------------------------------------
# Checks shared by the classes: fail at once, naming argument, value and range.
# ---------------------------------------------------------------------------


def _is_finite_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _check_nonneg(name: str, value) -> None:
    if not (_is_finite_number(value) and value >= 0):
        raise ValueError(f"{name}={value!r}: expected a finite number >= 0")


def _check_positive(name: str, value) -> None:
    if not (_is_finite_number(value) and value > 0):
        raise ValueError(f"{name}={value!r}: expected a finite number > 0")


def _check_unit(name: str, value) -> None:
    if not (_is_finite_number(value) and 0 <= value < 1):
        raise ValueError(f"{name}={value!r}: expected a number in [0, 1)")


def _check_bool(name: str, value) -> None:
    if not isinstance(value, bool):
        # ValueError like every other bad hyper-parameter, whatever the cause
        raise ValueError(f"{name}={value!r}: expected True or False")  # noqa: TRY004


class _Optimizer(torch.optim.Optimizer):
    """What the six classes share: argument checks, the closure, the L2 term, a short repr.

    A subclass names its update function (``rule``, looked up in this module at
    each step, so that an edited or patched function is the one that runs), the
    state tensors it keeps per parameter (``state_names``, zero at the start),
    and whether it takes the step number ``t``. The batched engine reads the
    same three declarations, so adding an optimiser means editing this module only.
    """

    rule: str  # the name of the update function of this module, e.g. "adam_update"
    state_names: tuple[str, ...] = ()  # its state tensors, keyword arguments of the rule
    counts_steps: bool = False  # whether the rule takes the step number t = 1, 2, ...
    _unit: tuple[str, ...] = ()  # hyper-parameters that must lie in [0, 1)
    _positive: tuple[str, ...] = ()  # hyper-parameters that must be > 0
    _bool: tuple[str, ...] = ()  # hyper-parameters that must be True or False

    def add_param_group(self, param_group: dict) -> None:
        super().add_param_group(param_group)
        self.check(self.param_groups[-1])  # now holds the defaults too: check every group

    @classmethod
    def check(cls, group: dict) -> None:
        """Check the hyper-parameters of a param group, defaults included (a ValueError
        naming the first bad one); :class:`mla_course.config.Config` checks with it too."""
        _check_positive("lr", group["lr"])
        _check_nonneg("weight_decay", group["weight_decay"])
        for name in cls._unit:
            _check_unit(name, group[name])
        for name in cls._positive:
            _check_positive(name, group[name])
        for name in cls._bool:
            _check_bool(name, group[name])
        if "betas" in group:
            betas = group["betas"]
            if not isinstance(betas, (tuple, list)) or len(betas) != 2:
                raise ValueError(f"betas={betas!r}: expected a pair (beta1, beta2) in [0, 1)")
            for i, beta in enumerate(betas):
                _check_unit(f"betas[{i}]", beta)

    @classmethod
    def hyper_parameters(cls, group: dict) -> dict:
        """The hyper-parameters of a param group, as keyword arguments of the update function."""
        return {k: group[k] for k in group if k not in ("params", "weight_decay")}

    @torch.no_grad()
    def step(self, closure: Callable[[], Tensor] | None = None) -> Tensor | None:
        """One update of every parameter that has a gradient; returns ``closure()`` if given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        update = update_function(self.rule)
        for group in self.param_groups:
            hypers = self.hyper_parameters(group)
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError(f"{type(self).__name__} does not support sparse gradients")
                g = p.grad
                if group["weight_decay"] != 0:
                    g = add_weight_decay(g, p, group["weight_decay"])
                state = self.state[p]
                if not state:  # first step of p: the state starts at zero
                    state.update({name: torch.zeros_like(p) for name in self.state_names})
                    if self.counts_steps:
                        state["t"] = 0
                if self.counts_steps:
                    state["t"] += 1
                update(p, g, **state, **hypers)
        return loss

    def __repr__(self) -> str:
        group = self.param_groups[0] if self.param_groups else self.defaults
        args = ", ".join(f"{k}={group[k]!r}" for k in self.defaults)
        n = len(self.param_groups)
        return f"{type(self).__name__}({args}{f', groups={n}' if n > 1 else ''})"


def update_function(rule: str) -> Callable:
    """The update function named ``rule`` (``"adam_update"``...), as this module holds it now."""
    return globals()[rule]


class SGD(_Optimizer):
    """Gradient descent on the mini-batch gradient: ``theta <- theta - lr * g``."""

    rule = "sgd_update"

    def __init__(self, params: Iterable, lr: float, weight_decay: float = 0.0):
        super().__init__(params, {"lr": lr, "weight_decay": weight_decay})


class _Velocity(_Optimizer):
    """What momentum and Nesterov share: a velocity per parameter."""

    state_names = ("v",)  # velocity, starts at rest
    _unit = ("momentum",)

    def __init__(
        self, params: Iterable, lr: float, momentum: float = 0.9, weight_decay: float = 0.0
    ):
        super().__init__(params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay})


class Momentum(_Velocity):
    """Momentum: ``v <- alpha * v - rho * g``, ``theta <- theta + v`` (``alpha = momentum``,
    ``rho = lr``). Same steps as ``torch.optim.SGD(lr, momentum)``; see :func:`momentum_update`.
    """

    rule = "momentum_update"


class Nesterov(_Velocity):
    """Nesterov momentum: the gradient at the look-ahead point ``theta + alpha * v``.

    The parameters hold the look-ahead point itself (see :func:`nesterov_update`),
    which is what ``torch.optim.SGD(lr, momentum, nesterov=True)`` does.
    """

    rule = "nesterov_update"


class AdaGrad(_Optimizer):
    """AdaGrad: a step per parameter, ``lr / (eps + sqrt(r))`` with ``r`` the sum of squared
    gradients. Same steps as ``torch.optim.Adagrad(lr, eps=eps)``.
    """

    rule = "adagrad_update"
    state_names = ("r",)  # accumulated squared gradients
    _positive = ("eps",)

    def __init__(
        self, params: Iterable, lr: float = 0.01, eps: float = 1e-10, weight_decay: float = 0.0
    ):
        super().__init__(params, {"lr": lr, "eps": eps, "weight_decay": weight_decay})


class RMSProp(_Optimizer):
    """RMSProp: AdaGrad with a moving average ``r <- alpha * r + (1 - alpha) * g * g``
    (the lecture's decay rate ``rho`` is ``alpha``). Same steps as ``torch.optim.RMSprop``.
    """

    rule = "rmsprop_update"
    state_names = ("r",)  # moving average of squared gradients
    _unit = ("alpha",)
    _positive = ("eps",)

    def __init__(
        self,
        params: Iterable,
        lr: float = 0.01,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
    ):
        super().__init__(
            params, {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay}
        )


class Adam(_Optimizer):
    """Adam: momentum ``s`` on the gradient, RMSProp's ``r`` for the step, both bias-corrected.

    ``betas = (rho1, rho2)`` in the lecture's notation. With ``bias_correction=True``
    (the default) the steps are those of ``torch.optim.Adam``; ``False`` drops
    the division by ``1 - rho**t``, to see what it is for.
    """

    rule = "adam_update"
    state_names = ("s", "r")  # first moment (mean of g), second moment (mean of g * g)
    counts_steps = True  # t, the time step
    _positive = ("eps",)
    _bool = ("bias_correction",)

    def __init__(
        self,
        params: Iterable,
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        bias_correction: bool = True,
    ):
        defaults = {
            "lr": lr,
            "betas": betas,
            "eps": eps,
            "weight_decay": weight_decay,
            "bias_correction": bias_correction,
        }
        super().__init__(params, defaults)

    @classmethod
    def hyper_parameters(cls, group: dict) -> dict:
        hypers = super().hyper_parameters(group)
        hypers["beta1"], hypers["beta2"] = hypers.pop("betas")
        return hypers


# name -> class; ``Config.optimizer`` names one of these.
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSProp,
    "adam": Adam,
}


def _optimizer_class(name: str) -> type[_Optimizer]:
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer={name!r}: expected one of {sorted(OPTIMIZERS)}")
    return OPTIMIZERS[name]


def make_optimizer(name: str, params: Iterable, lr: float, **kwargs) -> torch.optim.Optimizer:
    """A new optimiser from its name (one of :data:`OPTIMIZERS`), e.g. ``make_optimizer("adam", model.parameters(), 1e-3)``."""
    cls = _optimizer_class(name)
    try:
        return cls(params, lr=lr, **kwargs)
    except TypeError as err:  # an argument this optimiser does not take, e.g. momentum for adam
        raise TypeError(f"optimizer={name!r}: {err}") from None


def hyper_parameters(name: str, lr: float, **kwargs) -> dict:
    """The checked hyper-parameters of optimiser ``name``, defaults filled in, as the keyword
    arguments of its update function, plus ``weight_decay``.

    ``hyper_parameters("adam", 1e-3)`` gives ``{"lr": 0.001, "eps": 1e-08, "bias_correction":
    True, "beta1": 0.9, "beta2": 0.999, "weight_decay": 0.0}``. The batched engine
    (:mod:`mla_course.engine`) starts from it, so its defaults and checks are the classes'.
    """
    cls = _optimizer_class(name)
    defaults = {k: p.default for k, p in inspect.signature(cls).parameters.items()}
    unknown = sorted(set(kwargs) - set(defaults) - {"lr"})
    if unknown or "params" in kwargs:
        raise TypeError(f"optimizer={name!r}: unexpected keyword arguments {unknown or ['params']}")
    group = {**defaults, "lr": lr, **kwargs}
    del group["params"]
    cls.check(group)
    return {**cls.hyper_parameters(group), "weight_decay": group["weight_decay"]}
