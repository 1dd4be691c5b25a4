"""Claims: every sentence of the book that states a number, an order or a trend is checked.

A page states a conclusion in its prose and checks it in the code right above::

    check("the tutorial's settings leave the network near chance",
          acc < 0.2, measured=f"test accuracy {acc:.2%}")
    check_order(table, "relu", ">", "sigmoid")
    check_equivalent(table, "relu", "tanh", margin=0.5)
    check_unresolved(table, "dropout", "plain")

Each check prints one short line (``✓ claim — measured``) and, when it fails,
raises :class:`ClaimFailed` with the page, the claim and the measured value: a
failing claim stops the book's build.

**One level.** Every comparison is a t-test (:mod:`scipy.stats`) at the book's one
level, :data:`LEVEL` (one-sided 1 %): paired when both arms are
:class:`~mla_course.tables.Result` objects with the same seeds (same initial weights,
same batch order), Welch otherwise. Each arm needs at least 3 seeds, and a diverged
run is never averaged: it refuses the claim.

- :func:`check_order`: ``a`` beats ``b`` (one-sided test rejects "no difference").
- :func:`check_equivalent`: ``a`` and ``b`` within ``±margin`` (two one-sided tests, TOST).
- :func:`check_unresolved`: neither one-sided test rejects: the difference is below what
  the seeds resolve. It fails when one arm is significantly better *or* worse.

**Quick mode.** A claim that the shrunken runs of ``MLA_QUICK=1`` cannot support
takes ``full_only=True``: in quick mode it prints ``unchecked in quick mode: <claim>``
and is recorded as skipped.

**The claims page.** When ``MLA_CLAIMS_DIR`` is set (the docs build sets it, see
``docs/_ext/claims_page.py``), every check is recorded there (one JSON line: page,
kind, claim, measured, p-value, status), and the book gets a page listing them.
"""

from __future__ import annotations

import json
import math
import os
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from scipy import stats

from .utils import quick

__all__ = [
    "LEVEL",
    "ClaimFailed",
    "check",
    "check_equivalent",
    "check_order",
    "check_unresolved",
]

LEVEL = 0.01  # the book's one level: one-sided 1 %
MIN_SEEDS = 3  # fewer seeds give no usable estimate of the noise
WIDTH = 77  # the printed line fits the book's output column
CLAIMS_DIR = "MLA_CLAIMS_DIR"
KINDS = ("order", "equivalence", "unresolved", "threshold")


class ClaimFailed(AssertionError):
    """A sentence of the book is not true of this build's measurements."""


def _page() -> Path:
    """The script being run: the page (Sphinx-Gallery sets ``sys.argv[0]`` to it too)."""
    return Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else Path("<interactive>")


def _record(kind: str, statement: str, measured: str, status: str, p: float | None) -> None:
    folder = os.environ.get(CLAIMS_DIR)
    if not folder:
        return
    page = _page()
    line = json.dumps(
        {
            "page": str(page),
            "kind": kind,
            "claim": statement,
            "measured": measured,
            "p": p,
            "status": status,
        }
    )
    path = Path(folder) / f"{page.stem}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:  # one process per page: no interleaving
        f.write(line + "\n")


def _print(line: str) -> None:
    print(textwrap.fill(line, WIDTH, subsequent_indent="    ", break_on_hyphens=False))


def _decide(kind, statement, ok, measured, full_only, p=None) -> None:
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError(f"statement={statement!r}: expected the claim, in words")
    if not isinstance(measured, str):
        raise TypeError(f"measured={measured!r}: expected a string saying what was measured")
    if full_only and quick():
        _print(f"unchecked in quick mode: {statement}")
        _record(kind, statement, measured, "skipped (quick mode)", p)
        return
    if not ok:
        _record(kind, statement, measured, "FAILED", p)
        raise ClaimFailed(f"{_page().name}: the claim {statement!r} is false: measured {measured}")
    _print(f"✓ {statement} — {measured}")
    _record(kind, statement, measured, "checked", p)


def check(statement: str, ok: bool, *, measured: str, full_only: bool = False) -> None:
    """Check the claim ``statement``: ``ok`` must be true of this build's ``measured`` value.

    ``measured`` says what was measured, in words and numbers
    (``"test accuracy 11.35 %"``); it is printed, and quoted if the claim fails.
    """
    _decide("threshold", statement, bool(ok), measured, full_only)


# ---------------------------------------------------------------------------
# Two arms over seeds.
# ---------------------------------------------------------------------------


def _scale(metric: str) -> tuple[float, str, str]:
    """Factor, unit after a value, unit of a difference."""
    return (100.0, " %", " points") if metric.endswith("_acc") else (1.0, "", "")


def _fmt(x: float, metric: str) -> str:
    return f"{x:.1f}" if metric.endswith("_acc") else f"{x:.3g}"


def _arm(table, label, metric: str):
    if not isinstance(table, Mapping):
        raise TypeError(f"table={type(table).__name__}: expected a mapping from labels to results")
    if label not in table:
        raise KeyError(f"{label!r} is not in the table (labels: {', '.join(map(str, table))})")
    x = table[label]
    if hasattr(x, "values") and callable(x.values) and hasattr(x, "seeds"):
        values, seeds = x.values(metric), list(x.seeds)
        diverged = getattr(x, "diverged", 0)
    elif isinstance(x, Sequence) and not isinstance(x, str):
        values, seeds, diverged = list(x), None, 0
    else:
        raise TypeError(
            f"table[{label!r}]: expected a Result or a sequence of per-seed values, "
            f"got {type(x).__name__}"
        )
    values = [float(v) for v in values]
    if diverged or any(not math.isfinite(v) for v in values):
        raise ClaimFailed(
            f"{_page().name}: {label!r} has diverged runs ({values}); a diverged run is "
            "never averaged into a mean and never supports a claim"
        )
    if len(values) < MIN_SEEDS:
        raise ValueError(
            f"{label!r} has {len(values)} seeds: a comparison needs at least {MIN_SEEDS} "
            "seeds to know its noise"
        )
    return np.asarray(values), seeds


class _Test:
    """The difference ``a - b`` of two arms, and its one-sided t-tests."""

    def __init__(self, table, a, b, metric: str):
        self.a, self.b, self.metric = a, b, metric
        self.va, sa = _arm(table, a, metric)
        self.vb, sb = _arm(table, b, metric)
        self.paired = sa is not None and sa == sb
        self.scale, self.unit, self.dunit = _scale(metric)
        self.diff = float(self.va.mean() - self.vb.mean())
        if self.paired:
            d = self.va - self.vb
            self.se = float(d.std(ddof=1) / math.sqrt(len(d)))
            self.df = f"{len(d) - 1}"
        else:
            qa = self.va.var(ddof=1) / len(self.va)
            qb = self.vb.var(ddof=1) / len(self.vb)
            self.se = math.sqrt(qa + qb)
            dof = (qa + qb) ** 2 / (qa**2 / (len(self.va) - 1) + qb**2 / (len(self.vb) - 1))
            self.df = f"{dof:.1f}" if math.isfinite(dof) else "∞"

    def p(self, alternative: str, shift: float = 0.0) -> float:
        """p-value of ``a - b - shift`` being ``"greater"`` / ``"less"`` than 0."""
        a = self.va - shift
        if self.paired:
            r = stats.ttest_rel(a, self.vb, alternative=alternative)
        else:
            r = stats.ttest_ind(a, self.vb, equal_var=False, alternative=alternative)
        p = float(r.pvalue)
        if math.isnan(p):  # no noise at all: the sign of the difference decides
            d = float(a.mean() - self.vb.mean())
            p = 0.0 if (d > 0 if alternative == "greater" else d < 0) else 1.0
        return p

    def means(self, op: str = "vs") -> str:
        s = self.scale
        return (
            f"{self.a} {_fmt(self.va.mean() * s, self.metric)}{self.unit} {op} "
            f"{self.b} {_fmt(self.vb.mean() * s, self.metric)}{self.unit}"
        )

    def difference(self) -> str:
        s, f = self.scale, (".2f" if self.metric.endswith("_acc") else ".3g")
        return f"{self.diff * s:+{f}} ± {self.se * s:{f}}{self.dunit}"

    def test(self, p: float) -> str:
        return f"{'paired' if self.paired else 'Welch'} t({self.df}), p = {p:.2g}"


def _op(op: str) -> str:
    if op not in (">", "<"):
        raise ValueError(f"op={op!r}: expected '>' or '<'")
    return op


def _metric_words(metric: str) -> str:
    return metric.replace("_", " ")


def check_order(table, a, op, b, *, metric="test_acc", claim=None, full_only=False) -> None:
    """Check that ``a`` ends above (``op=">"``) or below (``"<"``) ``b`` on ``metric``.

    A one-sided t-test at :data:`LEVEL` over the seeds (paired when the two arms share
    their seeds, Welch otherwise) must reject "no difference".
    """
    t = _Test(table, a, b, metric)
    p = t.p("greater" if _op(op) == ">" else "less")
    statement = (
        claim or f"{a} ends {'above' if op == '>' else 'below'} {b} ({_metric_words(metric)})"
    )
    measured = f"{t.means(op)}: {t.difference()}, {t.test(p)}"
    _decide("order", statement, p < LEVEL, measured, full_only, p)


def check_equivalent(
    table, a, b, *, margin, metric="test_acc", claim=None, full_only=False
) -> None:
    """Check that ``a`` and ``b`` differ by less than ``margin`` on ``metric`` (TOST).

    ``margin`` is in the printed units (points of % for an accuracy); both one-sided
    tests, "the difference is above ``-margin``" and "below ``+margin``", must reject
    at :data:`LEVEL`.
    """
    if not isinstance(margin, (int, float)) or not margin > 0 or not math.isfinite(margin):
        raise ValueError(f"margin={margin!r}: expected a positive number, in printed units")
    t = _Test(table, a, b, metric)
    m = margin / t.scale
    p = max(t.p("greater", -m), t.p("less", m))
    statement = claim or f"{a} and {b} within {margin:g}{t.dunit or ''} ({_metric_words(metric)})"
    measured = f"{t.means()}: {t.difference()}, TOST ±{margin:g}, {t.test(p)}"
    _decide("equivalence", statement, p < LEVEL, measured, full_only, p)


def check_unresolved(table, a, b, *, metric="test_acc", claim=None, full_only=False) -> None:
    """Check that the seeds resolve no difference between ``a`` and ``b`` on ``metric``.

    Holds when neither one-sided test ("``a`` above ``b``", "``a`` below ``b``") rejects at
    :data:`LEVEL`; fails when one arm is significantly better or worse.
    """
    t = _Test(table, a, b, metric)
    p = min(t.p("greater"), t.p("less"))
    n = min(len(t.va), len(t.vb))
    statement = claim or (
        f"the difference between {a} and {b}, {t.difference()}, is below what {n} seeds resolve"
    )
    measured = f"{t.means()}: {t.test(p)} (smaller one-sided p)"
    _decide("unresolved", statement, p >= LEVEL, measured, full_only, p)
