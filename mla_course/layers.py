"""Batch normalisation and dropout written from scratch, to read next to the lecture.

* :class:`BatchNorm1d` is the algorithm of Ioffe and Szegedy (2015) and gives the
  same outputs, gradients and running statistics as :class:`torch.nn.BatchNorm1d`.
  :func:`adapt_batchnorm` is AdaBN (Li et al., 2017): re-estimate the running
  statistics on data whose distribution differs from the training set's.
* :class:`Dropout` is the dropout of Srivastava et al. (2014), inverted (the
  usual form, the one of :class:`torch.nn.Dropout`) or not, and
  :func:`mc_dropout_predict` averages the predictions over random masks.

Both layers plug into :class:`mla_course.models.MLP` through ``norm_layer=`` and
``dropout_layer=``.

References
----------
S. Ioffe and C. Szegedy, "Batch Normalization: Accelerating Deep Network
Training by Reducing Internal Covariate Shift", ICML 2015.
Y. Li, N. Wang, J. Shi, X. Hou and J. Liu, "Adaptive Batch Normalization for
practical domain adaptation", Pattern Recognition 80, 2018 (ICLR workshop 2017).
N. Srivastava, G. Hinton, A. Krizhevsky, I. Sutskever and R. Salakhutdinov,
"Dropout: A Simple Way to Prevent Neural Networks from Overfitting", JMLR 2014.
Y. Gal and Z. Ghahramani, "Dropout as a Bayesian Approximation", ICML 2016.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "BatchNorm1d",
    "Dropout",
    "adapt_batchnorm",
    "batch_norm",
    "dropout",
    "mc_dropout_predict",
]


# --------------------------------------------------------------------------- batch norm
def batch_norm(
    x: torch.Tensor,
    gamma: torch.Tensor | None,
    beta: torch.Tensor | None,
    running_mean: torch.Tensor | None,
    running_var: torch.Tensor | None,
    *,
    training: bool,
    momentum: float | None = 0.1,
    eps: float = 1e-5,
    num_batches_tracked: torch.Tensor | None = None,
) -> torch.Tensor:
    """Normalise each feature of ``x`` (shape ``(batch, C)`` or ``(batch, C, L)``).

    In training, the statistics are those of the mini-batch (Ioffe and Szegedy,
    Algorithm 1)::

        mu    = mean_i x_i                      # mini-batch mean, (C,)
        var   = mean_i (x_i - mu)^2             # mini-batch variance (biased), (C,)
        x_hat = (x_i - mu) / sqrt(var + eps)    # normalise
        y_i   = gamma * x_hat + beta            # scale and shift

    and, as in PyTorch, the running averages move towards them in place:
    ``running = (1 - momentum) * running + momentum * batch_stat``, where the
    variance is the *unbiased* one (``m / (m - 1)`` times ``var``). With
    ``momentum=None`` the running statistics are the cumulative average of the
    batch statistics (``num_batches_tracked`` counts the batches). In evaluation,
    ``mu`` and ``var`` are the running statistics; autograd differentiates
    everything else.
    """
    dims = (0,) if x.dim() == 2 else (0, 2)  # average over the batch (and length)
    shape = (1, -1) if x.dim() == 2 else (1, -1, 1)  # broadcast (C,) against x
    if training:
        m = x.numel() // x.shape[1]  # values per feature
        if m < 2:
            raise ValueError(
                f"batch norm in training needs more than one value per feature, got input of "
                f"shape {tuple(x.shape)}: use a batch of at least 2 examples or call .eval()"
            )
        mean = x.mean(dim=dims)  # (C,)
        var = x.var(dim=dims, unbiased=False)  # (C,) biased: the one that normalises
        if running_mean is not None and running_var is not None:
            with torch.no_grad():
                if momentum is None:  # cumulative moving average
                    if num_batches_tracked is None:
                        raise ValueError("momentum=None needs num_batches_tracked")
                    num_batches_tracked += 1
                    weight = 1.0 / float(num_batches_tracked)
                else:
                    weight = momentum
                    if num_batches_tracked is not None:
                        num_batches_tracked += 1
                running_mean.mul_(1 - weight).add_(weight * mean)
                running_var.mul_(1 - weight).add_(weight * var * m / (m - 1))  # unbiased
    else:
        if running_mean is None or running_var is None:
            raise ValueError("batch norm in evaluation needs running statistics")
        mean, var = running_mean, running_var
    x_hat = (x - mean.reshape(shape)) / torch.sqrt(var.reshape(shape) + eps)
    if gamma is not None:
        x_hat = x_hat * gamma.reshape(shape)
    if beta is not None:
        x_hat = x_hat + beta.reshape(shape)
    return x_hat


class BatchNorm1d(nn.Module):
    r"""Batch normalisation over a mini-batch, from scratch (Ioffe and Szegedy, 2015).

    For each feature :math:`k` of a mini-batch :math:`\{x_1, \dots, x_m\}`:

    .. math::

        \mu_B = \frac{1}{m}\sum_i x_i, \quad
        \sigma_B^2 = \frac{1}{m}\sum_i (x_i - \mu_B)^2, \quad
        \hat x_i = \frac{x_i - \mu_B}{\sqrt{\sigma_B^2 + \epsilon}}, \quad
        y_i = \gamma \hat x_i + \beta.

    :math:`\gamma` and :math:`\beta` are learnt: with :math:`\gamma = \sigma_B`
    and :math:`\beta = \mu_B` the layer "de-normalises" and gives back its input,
    so normalising never removes what the network could represent. At test time
    the mini-batch statistics are replaced by running averages collected during
    training (``running_mean``, ``running_var``), as :class:`torch.nn.BatchNorm1d`
    does, with the same ``momentum`` convention (the weight of the *new* batch).

    Parameters
    ----------
    num_features
        Number of features ``C`` of inputs of shape ``(batch, C)`` or ``(batch, C, L)``.
    eps
        Added to the variance so that a constant feature does not divide by zero.
    momentum
        Weight of the current batch in the running averages (PyTorch's default 0.1);
        ``None`` for a cumulative average over all batches seen.
    affine
        Learn ``gamma`` (``weight``, initialised to 1) and ``beta`` (``bias``, 0).
    track_running_stats
        Keep running statistics; without them the batch statistics are used in
        evaluation too.
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
    ):
        super().__init__()
        if not isinstance(num_features, int) or isinstance(num_features, bool) or num_features <= 0:
            raise ValueError(f"num_features={num_features!r}: expected a positive integer")
        if not isinstance(eps, (int, float)) or not eps > 0:
            raise ValueError(f"eps={eps!r}: expected a positive number")
        if momentum is not None and not (
            isinstance(momentum, (int, float)) and 0.0 <= momentum <= 1.0
        ):
            raise ValueError(f"momentum={momentum!r}: expected a number in [0, 1] or None")
        self.num_features, self.eps, self.momentum = num_features, float(eps), momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        # Same names as torch.nn.BatchNorm1d, so state dicts load from one into the other.
        if affine:
            self.weight = nn.Parameter(torch.ones(num_features))  # gamma, (C,)
            self.bias = nn.Parameter(torch.zeros(num_features))  # beta, (C,)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", torch.zeros(num_features))
            self.register_buffer("running_var", torch.ones(num_features))
            self.register_buffer("num_batches_tracked", torch.tensor(0, dtype=torch.long))
        else:
            self.running_mean = self.running_var = self.num_batches_tracked = None

    def reset_running_stats(self) -> None:
        """Forget the running statistics (mean 0, variance 1, no batch seen)."""
        if self.track_running_stats:
            self.running_mean.zero_()
            self.running_var.fill_(1.0)
            self.num_batches_tracked.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() not in (2, 3) or x.shape[1] != self.num_features:
            raise ValueError(
                f"input of shape {tuple(x.shape)}: expected (batch, {self.num_features}) or "
                f"(batch, {self.num_features}, length)"
            )
        if self.training or not self.track_running_stats:
            # Batch statistics; the running averages move only in training.
            update = self.training and self.track_running_stats
            return batch_norm(
                x,
                self.weight,
                self.bias,
                self.running_mean if update else None,
                self.running_var if update else None,
                training=True,
                momentum=self.momentum,
                eps=self.eps,
                num_batches_tracked=self.num_batches_tracked if update else None,
            )
        return batch_norm(
            x,
            self.weight,
            self.bias,
            self.running_mean,
            self.running_var,
            training=False,
            eps=self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, track_running_stats={self.track_running_stats}"
        )


_BATCHNORMS = (nn.modules.batchnorm._BatchNorm, BatchNorm1d)


@torch.no_grad()
def adapt_batchnorm(
    model: nn.Module, X: torch.Tensor, *, batch_size: int | None = None
) -> nn.Module:
    """AdaBN (Li et al., 2017): re-estimate every batch norm's running statistics on ``X``.

    When the test data are shifted (other brightness, other sensor...), the
    statistics collected on the training set no longer centre and scale the
    hidden units. AdaBN keeps every learnt weight, forgets the running
    statistics and measures them again on the new data, unlabelled. Works for
    :class:`torch.nn.BatchNorm1d` (and 2d/3d) and for :class:`BatchNorm1d`.

    ``X`` goes through the network in one batch (``batch_size=None``, exact
    statistics) or in batches of ``batch_size`` whose statistics are averaged.
    Only the batch norms are put in training mode, so dropout stays off. The
    model is modified in place, left in evaluation mode, and returned.
    """
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 2):
        raise ValueError(f"batch_size={batch_size!r}: expected None or an integer >= 2")
    norms = [m for m in model.modules() if isinstance(m, _BATCHNORMS)]
    if not norms:
        raise ValueError(f"model {type(model).__name__} has no batch norm layer to adapt")
    if any(not m.track_running_stats for m in norms):
        raise ValueError("adapt_batchnorm needs batch norms with track_running_stats=True")
    model.eval()
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches of X
        m.train()
    step = len(X) if batch_size is None else batch_size
    for start in range(0, len(X), step):
        model(X[start : start + step])
    for m, momentum in zip(norms, saved, strict=True):
        m.momentum = momentum
        m.eval()
    return model


# ------------------------------------------------------------------------------ dropout
def dropout(
    x: torch.Tensor,
    p: float,
    *,
    training: bool,
    inverted: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Zero each value of ``x`` with probability ``p`` in training.

    Inverted dropout (``inverted=True``, PyTorch's rule) multiplies the survivors
    by ``1 / (1 - p)`` in training so that the expected activation is unchanged,
    and is the identity at test time. The original rule (``inverted=False``)
    leaves the survivors alone in training and multiplies by the keep
    probability ``1 - p`` at test time instead. ``p`` lies in [0, 1]; with ``p = 1``
    every value is dropped and the result is zeros, as :func:`torch.nn.functional.dropout`
    gives.
    """
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
        raise ValueError(f"p={p!r}: expected a probability in [0, 1]")
    if p == 0.0:
        return x
    if training:
        if p == 1.0:  # nothing kept: zeros, not 0 * x / 0 = NaN
            return torch.zeros_like(x)
        keep = 1.0 - p
        mask = torch.empty_like(x).bernoulli_(keep, generator=generator)  # 1 = kept
        return x * mask / keep if inverted else x * mask
    return x if inverted else x * (1.0 - p)


class Dropout(nn.Module):
    """Dropout (Srivastava et al., 2014) from scratch: each unit is zeroed with probability ``p``.

    Parameters
    ----------
    p
        Probability of dropping a unit, in [0, 1).
    inverted
        ``True`` (the usual rule, :class:`torch.nn.Dropout`'s): scale the survivors by
        ``1 / (1 - p)`` in training and do nothing at test time. ``False`` (the rule
        of the original paper): no scaling in training, multiply by ``1 - p`` at
        test time.
    generator
        Random generator for the masks (the global one by default). A generator
        on the CPU serves CPU tensors only; pass one on the data's device.
    """

    def __init__(self, p: float = 0.5, *, inverted: bool = True, generator=None):
        super().__init__()
        if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p < 1.0:
            raise ValueError(f"p={p!r}: expected a probability in [0, 1)")
        self.p, self.inverted, self.generator = float(p), inverted, generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(
            x, self.p, training=self.training, inverted=self.inverted, generator=self.generator
        )

    def extra_repr(self) -> str:
        return f"p={self.p}, inverted={self.inverted}"


_DROPOUTS = (nn.modules.dropout._DropoutNd, Dropout)


@torch.no_grad()
def mc_dropout_predict(
    model: nn.Module, X: torch.Tensor, n_samples: int = 20, *, batch_size: int = 2048
) -> torch.Tensor:
    """Monte-Carlo dropout: average the class probabilities over ``n_samples`` random masks.

    This estimates the lecture's :math:`\\hat y = \\mathbb{E}_z[f(x, z; \\theta)]`
    by sampling (Gal and Ghahramani, 2016), instead of the one-pass shortcut of
    scaling the activations. Dropout layers are switched on, every other layer
    (batch norm...) stays in evaluation mode. Returns probabilities of shape
    ``(len(X), classes)``; the model is left in evaluation mode.
    """
    if not isinstance(n_samples, int) or isinstance(n_samples, bool) or n_samples <= 0:
        raise ValueError(f"n_samples={n_samples!r}: expected a positive integer")
    drops = [m for m in model.modules() if isinstance(m, _DROPOUTS)]
    if not drops:
        raise ValueError(f"model {type(model).__name__} has no dropout layer to sample")
    model.eval()
    for m in drops:
        m.train()
    try:
        chunks = []
        for start in range(0, len(X), batch_size):
            x = X[start : start + batch_size]
            probs = sum(F.softmax(model(x), dim=1) for _ in range(n_samples))
            chunks.append(probs / n_samples)  # (chunk, classes)
    finally:
        model.eval()
    return torch.cat(chunks)
