"""The figures of the book, in one consistent style.

:func:`use_style` sets the style once per script: a colour-blind-safe cycle
(Okabe and Ito) and readable font sizes; the book build adds a copy of each
figure at twice the resolution for high-density screens. The helpers return the ``Axes`` they
drew on, so a page can add to them; :func:`draw_surface` and :func:`draw_nesterov_step` draw the
test functions of :mod:`mla_course.surfaces`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import matplotlib as mpl
import matplotlib.pyplot as plt
import torch
from torch import Tensor

from .surfaces import Surface, nesterov_step

__all__ = [
    "METRIC_LABELS",
    "OKABE_ITO",
    "block_average",
    "draw_nesterov_step",
    "draw_surface",
    "figure_problems",
    "plot_confusion",
    "plot_curves",
    "plot_table_curves",
    "show_images",
    "use_style",
]

# Okabe & Ito (2008), a qualitative palette readable by colour-blind readers.
OKABE_ITO = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


def use_style() -> None:
    """Set the book's matplotlib style."""
    mpl.rcParams.update(
        {
            "axes.prop_cycle": mpl.cycler(color=OKABE_ITO),
            "axes.grid": True,
            "grid.alpha": 0.3,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.titlesize": 11,
            "axes.labelsize": 10,
            "legend.fontsize": 9,
            "legend.frameon": False,
            "figure.dpi": 100,
            "savefig.dpi": 100,  # Sphinx-Gallery adds a 2x copy for high-density screens
            "figure.constrained_layout.use": True,
            "image.cmap": "viridis",
        }
    )


def show_images(
    images: torch.Tensor,
    titles: Sequence[str] | None = None,
    *,
    ncols: int = 8,
    cmap: str = "gray_r",
    symmetric: bool = False,
    size: float = 1.2,
    suptitle: str | None = None,
):
    """Show images of shape ``(n, 28, 28)``, ``(n, 1, 28, 28)`` or ``(n, 784)`` in a grid.

    All images share one colour scale (symmetric around 0 with ``symmetric=True``,
    for weights), ticks are hidden. Returns the figure.
    """
    images = (
        images.detach().float().cpu().reshape(len(images), 28, 28)
        if images.shape[-1] == 784
        else images.detach().float().cpu().reshape(len(images), *images.shape[-2:])
    )
    n = len(images)
    if n == 0:
        raise ValueError("images is empty: nothing to show")
    ncols = min(ncols, n)
    nrows = -(-n // ncols)
    if symmetric:
        vmax = images.abs().max().item()
        vmin = -vmax
    else:
        vmin, vmax = images.min().item(), images.max().item()
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size * ncols, size * nrows + 0.3 * bool(titles)), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i < n:
            ax.imshow(images[i], cmap=cmap, vmin=vmin, vmax=vmax)
            if titles is not None:
                ax.set_title(titles[i], fontsize=9)
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def block_average(values, window: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Means of consecutive windows of ``window`` values: the trend of a noisy curve.

    ``values`` is one value per step, a sequence or a 1-D tensor (the loss of
    each mini-batch, say); the windows do not overlap and an incomplete last one
    is dropped. Returns the step at which each window starts and its mean, both
    of shape ``(len(values) // window,)``, the means in float64:
    ``ax.plot(*block_average(history.step_loss, 20))``.
    """
    if not isinstance(window, int) or isinstance(window, bool) or window < 1:
        raise ValueError(f"window={window!r}: expected an integer >= 1")
    v = torch.as_tensor(values, dtype=torch.float64).cpu()
    if v.dim() != 1:
        raise ValueError(f"values of shape {tuple(v.shape)}: expected one value per step (1-D)")
    n = len(v) // window
    return torch.arange(n) * window, v[: n * window].view(n, window).mean(1)


def plot_curves(
    curves: Mapping[str, object],
    *,
    ax=None,
    xlabel: str = "epoch",
    ylabel: str = "",
    title: str | None = None,
    logy: bool = False,
    x=None,
):
    """Plot curves by label. A value is a sequence, or a ``(mean, std)`` pair drawn with a band."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 4))
    for label, value in curves.items():
        if isinstance(value, tuple) and len(value) == 2:
            mean, std = (torch.as_tensor(v, dtype=torch.float64) for v in value)
            xs = x if x is not None else torch.arange(1, len(mean) + 1)
            (line,) = ax.plot(xs, mean, label=label)
            ax.fill_between(xs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
        else:
            ys = torch.as_tensor(value, dtype=torch.float64)
            xs = x if x is not None else torch.arange(1, len(ys) + 1)
            ax.plot(xs, ys, label=label)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if title:
        ax.set_title(title)
    if logy:
        ax.set_yscale("log")
    ax.legend()
    return ax


#: The axis label of each per-epoch metric of a training history (accuracies in %).
METRIC_LABELS = {
    "train_loss": "training loss",
    "test_loss": "test loss",
    "train_acc": "training accuracy (%)",
    "test_acc": "test accuracy (%)",
}


def plot_table_curves(
    table: Mapping[str, object],
    labels: Sequence[str] | None = None,
    *,
    metrics: Sequence[str] = ("train_loss", "test_loss", "test_acc"),
    logy: Sequence[str] = ("train_loss",),
    log_band: bool = False,
    figsize: tuple[float, float] | None = None,
):
    """The per-epoch curves of a results table: one panel per metric, one line per label.

    ``table`` maps labels to :class:`mla_course.tables.Result` (the
    ``Table`` that :func:`mla_course.runs.sweep` returns); ``labels``
    picks and orders the lines (default: all of them). Each line is the mean over
    seeds with a band of one standard deviation; accuracies are drawn in %. The
    panels of ``logy`` have a log scale and, unless ``log_band=True``, show the
    mean alone: a band that reaches below 0 cannot be drawn there. Epochs are
    whole numbers on the x axis. Returns the array of ``Axes``, for the page to
    adjust (limits, legend size).
    """
    for metric in metrics:
        if metric not in METRIC_LABELS:
            raise ValueError(f"metrics: {metric!r} is not one of {list(METRIC_LABELS)}")
    labels = list(table) if labels is None else list(labels)
    missing = [label for label in labels if label not in table]
    if missing:
        raise ValueError(f"labels={missing!r} are not in the table, whose labels are {list(table)}")
    if figsize is None:
        figsize = (13 / 3 * len(metrics), 3.6)
    _, axes = plt.subplots(1, len(metrics), figsize=figsize, squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        scale = 100 if metric.endswith("_acc") else 1
        curves = {k: tuple(scale * v for v in table[k].curve(metric)) for k in labels}
        band = metric not in logy or log_band
        if not band:
            curves = {k: mean for k, (mean, _) in curves.items()}
        name = METRIC_LABELS[metric].removesuffix(" (%)").capitalize()
        plot_curves(
            curves,
            ax=ax,
            ylabel=METRIC_LABELS[metric],
            title=f"{name}: mean{' ± std' if band else ''} over seeds",
            logy=metric in logy,
        )
        ax.xaxis.get_major_locator().set_params(integer=True)
    return axes[0]


def plot_confusion(
    matrix: torch.Tensor, classes: Sequence[str], *, ax=None, title: str | None = None
):
    """A confusion matrix with counts written in the cells (rows: true class)."""
    if ax is None:
        _, ax = plt.subplots(figsize=(5.5, 5))
    m = matrix.cpu()
    im = ax.imshow(m.numpy(), cmap="Blues")
    ax.grid(False)
    ticks = range(len(classes))
    ax.set(
        xticks=ticks,
        yticks=ticks,
        xticklabels=classes,
        yticklabels=classes,
        xlabel="predicted class",
        ylabel="true class",
    )
    threshold = m.max().item() / 2
    for i in ticks:
        for j in ticks:
            ax.text(
                j,
                i,
                int(m[i, j]),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if m[i, j] > threshold else "black",
            )
    ax.figure.colorbar(im, ax=ax, shrink=0.8, label="examples")
    if title:
        ax.set_title(title)
    return ax


# ---------------------------------------------------------------------------
# Loss surfaces (mla_course.surfaces).
# ---------------------------------------------------------------------------


def draw_surface(
    surface: Surface, paths: dict[str, Tensor] | None = None, *, ax=None, levels: int = 30
):
    """Contours of ``surface`` (log-spaced) with each path of ``paths`` drawn on top. Returns ``ax``."""
    from matplotlib.colors import LogNorm

    if ax is None:
        _, ax = plt.subplots(figsize=(5, 4))
    X, Y, Z = surface.grid()
    shifted = Z - Z.min() + 1e-3 * (Z.max() - Z.min())  # > 0, so log-spaced levels work
    lv = torch.logspace(
        math.log10(shifted.min().item()), math.log10(shifted.max().item()), levels
    ).tolist()
    ax.contour(X, Y, shifted, levels=lv, norm=LogNorm(), cmap="Greys", linewidths=0.6, alpha=0.7)
    ax.plot(*surface.minimum, marker="*", color="k", markersize=10, linestyle="none")
    for label, path in (paths or {}).items():
        ax.plot(
            path[:, 0].tolist(),
            path[:, 1].tolist(),
            marker=".",
            markersize=3,
            linewidth=1.2,
            label=label,
        )
    x0, x1, y0, y1 = surface.extent
    ax.set(xlim=(x0, x1), ylim=(y0, y1), xlabel=r"$\theta_1$", ylabel=r"$\theta_2$")
    ax.grid(False)
    if paths:
        ax.legend(loc="best")
    return ax


def draw_nesterov_step(
    surface: Surface, theta: Tensor, v: Tensor, lr: float, momentum: float, *, ax=None
):
    """Draw :func:`nesterov_step`: the coast ``alpha v`` then the two gradient steps. Returns ``ax``."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6.5, 4.5))
    ahead, new_momentum, new_nesterov = nesterov_step(surface, theta, v, lr, momentum)
    draw_surface(surface, ax=ax, levels=120)
    arrows = [
        (theta, ahead, "0.4", r"coast: $\alpha v$"),
        (ahead, new_momentum, "#E69F00", r"momentum: $-\rho\nabla\mathcal{L}(\theta)$"),
        (ahead, new_nesterov, "#009E73", r"Nesterov: $-\rho\nabla\mathcal{L}(\theta+\alpha v)$"),
    ]
    for a, b, colour, label in arrows:
        ax.annotate(
            "", b.tolist(), a.tolist(), arrowprops={"arrowstyle": "->", "color": colour, "lw": 2}
        )
        ax.plot([], [], color=colour, lw=2, label=label)
    ax.plot(*theta.tolist(), "ko")
    ax.annotate(r"$\theta$", theta.tolist(), xytext=(-12, 6), textcoords="offset points")
    points = torch.stack([theta, ahead, new_momentum, new_nesterov])
    low, high = points.min(0).values, points.max(0).values
    pad = 0.5 * (high - low).max()
    ax.set(xlim=(low[0] - pad, high[0] + pad), ylim=(low[1] - pad, high[1] + pad))
    ax.legend(loc="lower right")
    return ax


# ---------------------------------------------------------------------------
# What a machine can judge of a figure.
# ---------------------------------------------------------------------------


def figure_problems(fig, min_font: float = 8.0) -> list[str]:
    """What a reader would stumble on in ``fig``, as a list (empty: nothing found): an axis
    with data but no label (an axis shared with a labelled one counts as labelled), legend
    text below ``min_font`` points, or two texts (titles, labels, legend entries,
    annotations) whose boxes overlap."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    problems, texts = [], []
    for i, ax in enumerate(fig.axes):
        name = f"axes {i} ({ax.get_title() or 'untitled'})"
        plotted = ax.lines or ax.collections or ax.patches
        colorbar = getattr(ax, "_colorbar", None) is not None  # its label is optional
        if ax.axison and plotted and not colorbar:
            for which in ("x", "y"):
                siblings = getattr(ax, f"get_shared_{which}_axes")().get_siblings(ax)
                if not any(getattr(a, f"get_{which}label")() for a in siblings):
                    problems.append(f"{name}: no {which} label")
        legend = ax.get_legend()
        if legend is not None:
            for t in legend.get_texts():
                if t.get_fontsize() < min_font:
                    size = t.get_fontsize()
                    problems.append(f"{name}: legend text {t.get_text()!r} at {size:g} pt")
                texts.append((f"{name}, legend {t.get_text()!r}", t))
        for kind, t in (
            ("title", ax.title),
            ("x label", ax.xaxis.label),
            ("y label", ax.yaxis.label),
        ):
            texts.append((f"{name}, {kind}", t))
        texts += [(f"{name}, text {t.get_text()!r}", t) for t in ax.texts]
    shown = [
        (n, t.get_window_extent(renderer)) for n, t in texts if t.get_visible() and t.get_text()
    ]
    for a, (na, ba) in enumerate(shown):
        problems += [f"{na} overlaps {nb}" for nb, bb in shown[a + 1 :] if ba.overlaps(bb)]
    return problems
