"""Results tables: the histories of each configuration over seeds, as mean ± std.

:func:`mla_course.runs.sweep` returns a :class:`Table`, a dict from labels to
:class:`Result` objects. A :class:`Result` holds the histories of one
configuration, one per seed, and summarises a final metric over them.

Diverged runs (the loss became NaN or infinite) are never averaged: ``mean``,
``std`` and ``sem`` are taken over the runs that did not diverge, ``diverged``
counts the others, and the table shows "(k diverged)" next to the seeds. A
summary over fewer than two finite runs has no spread: ``std`` and ``sem`` are
NaN then, so that no comparison can rest on a single run without saying so.
:meth:`Table.best` skips every configuration with a diverged seed unless told
otherwise.
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field

import torch

from .train import History

__all__ = ["METRICS", "Result", "Table"]

#: The final metrics a :class:`Result` summarises (the last epoch of each run).
METRICS = ("test_acc", "test_loss", "train_acc", "train_loss", "time")


def _check_metric(metric: str) -> None:
    if metric not in METRICS:
        raise ValueError(f"metric={metric!r}: expected one of {list(METRICS)}")


@dataclass
class Result:
    """The histories of one configuration, one per seed (in the order of ``seeds``)."""

    config: object  # the mla_course.config.Config that was run
    seeds: list[int]
    histories: list[History] = field(repr=False)

    def __post_init__(self):
        if len(self.seeds) != len(self.histories):
            raise ValueError(
                f"{len(self.seeds)} seeds but {len(self.histories)} histories: one per seed"
            )

    @property
    def evaluated_on(self) -> str:
        """The split the ``test_*`` metrics were measured on: ``"test"`` or ``"validation"``."""
        splits = {h.evaluated_on for h in self.histories}
        return splits.pop() if len(splits) == 1 else "mixed"

    @property
    def diverged(self) -> int:
        """How many seeds diverged."""
        return sum(h.diverged_at is not None for h in self.histories)

    def values(self, metric: str = "test_acc") -> list[float]:
        """The final ``metric`` of each seed; NaN for a seed that diverged."""
        _check_metric(metric)
        return [h.final()[metric] if h.diverged_at is None else math.nan for h in self.histories]

    def _finite(self, metric: str) -> list[float]:
        pairs = zip(self.values(metric), self.histories, strict=True)
        return [v for v, h in pairs if h.diverged_at is None]

    def mean(self, metric: str = "test_acc") -> float:
        """Mean of ``metric`` over the seeds that did not diverge (NaN if all did)."""
        v = self._finite(metric)
        return sum(v) / len(v) if v else math.nan

    def std(self, metric: str = "test_acc") -> float:
        """Sample standard deviation over the seeds that did not diverge (NaN below two)."""
        v = self._finite(metric)
        if len(v) < 2:
            return math.nan
        m = sum(v) / len(v)
        return math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1))

    def sem(self, metric: str = "test_acc") -> float:
        """Standard error of the mean, ``std / sqrt(n)`` over the runs that did not diverge."""
        return self.std(metric) / math.sqrt(max(1, len(self._finite(metric))))

    def curve(self, metric: str = "test_acc") -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and std over seeds of a per-epoch (or per-step, ``step_loss``) metric.

        Over the runs that did not diverge; if every run diverged, over all of
        them, up to the shortest. The std is NaN with fewer than two runs.
        """
        histories = [h for h in self.histories if h.diverged_at is None] or self.histories
        rows = [torch.tensor(getattr(h, metric), dtype=torch.float64) for h in histories]
        n = min(len(r) for r in rows)
        stack = torch.stack([r[:n] for r in rows])  # (runs, epochs)
        if len(rows) > 1:
            return stack.mean(0), stack.std(0)
        return stack.mean(0), torch.full((n,), math.nan, dtype=torch.float64)

    def __str__(self) -> str:
        text = f"{self.mean():.4f} ± {self.std():.4f} (n={len(self.seeds) - self.diverged})"
        return text + (f", {self.diverged} diverged" if self.diverged else "")


class Table(dict):
    """Results by label, shown as a table of mean ± std over seeds.

    In Sphinx-Gallery and Jupyter it renders as HTML; ``print`` gives plain text.
    The column titles name the split the runs were evaluated on ("test
    accuracy", or "validation accuracy" for ``Config(evaluate_on="validation")``).
    There is no time column: the engine trains the runs of a sweep together, so
    a run's share of the time says nothing about its configuration.
    """

    columns = (
        ("test_acc", "accuracy", 100, "%"),
        ("test_loss", "loss", 1, ""),
        ("train_loss", "train loss", 1, ""),
    )

    def best(
        self, metric: str = "test_acc", largest: bool | None = None, *, allow_diverged=False
    ) -> str:
        """The label with the best mean ``metric``.

        ``largest`` defaults to ``True`` for an accuracy and ``False`` for a loss
        or a time. A configuration with a diverged seed is skipped unless
        ``allow_diverged=True`` (its mean is then over the seeds that did not diverge).
        """
        _check_metric(metric)
        if largest is None:
            largest = metric.endswith("acc")
        means = {
            label: r.mean(metric)
            for label, r in self.items()
            if (allow_diverged or not r.diverged) and not math.isnan(r.mean(metric))
        }
        if not means:
            raise ValueError(
                "every configuration has a diverged seed: there is no best one "
                "(best(..., allow_diverged=True) ranks the seeds that did not diverge)"
            )
        return (max if largest else min)(means, key=means.get)

    def _split(self) -> str:
        splits = {r.evaluated_on for r in self.values()}
        return splits.pop() if len(splits) == 1 else "evaluation"

    def _head(self) -> list[str]:
        split = self._split()
        titles = [t if m.startswith("train") else f"{split} {t}" for m, t, _, _ in self.columns]
        return ["", *titles, "seeds"]

    def _rows(self) -> list[list[str]]:
        rows = []
        for label, r in self.items():
            cells = [str(label)]
            for metric, _, scale, unit in self.columns:
                m, s = r.mean(metric) * scale, r.std(metric) * scale
                if math.isnan(m):
                    cells.append("diverged")
                else:
                    cells.append(f"{m:.2f}{unit}" if math.isnan(s) else f"{m:.2f} ± {s:.2f}{unit}")
            n, d = len(r.seeds), r.diverged
            cells.append(f"{n}" + (f" ({d} diverged)" if d else ""))
            rows.append(cells)
        return rows

    def __repr__(self) -> str:
        rows = [self._head(), *self._rows()]
        widths = [max(len(x) for x in col) for col in zip(*rows, strict=True)]
        return "\n".join(
            "  ".join(x.ljust(w) for x, w in zip(row, widths, strict=True)).rstrip() for row in rows
        )

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(t)}</th>" for t in self._head())
        body = "".join(
            f"<tr><th>{html.escape(label)}</th>"
            + "".join(f"<td>{html.escape(c)}</td>" for c in cells)
            + "</tr>"
            for label, *cells in self._rows()
        )
        return (
            f'<table class="mla-results"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>"
        )
