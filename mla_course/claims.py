"""Claims: every sentence of the book that states a number, an order or a trend is checked.

A page states a conclusion in its prose and checks it in the code right above::

    check("the tutorial's settings leave the network near chance", acc < 0.2,
          measured=f"test accuracy {acc:.2%}")
    check_order("ReLU ends above the sigmoid", table["relu"], table["sigmoid"])
    check_equivalent("tanh and ReLU end within 0.5 points", table["tanh"], table["relu"],
                     margin=0.5)
    check_unresolved("dropout's gain is below what 5 seeds resolve", table["dropout"],
                     table["plain"])

Each check prints one line (``✓ claim — measured``) and, when it fails, raises
:class:`ClaimFailed` with the page, the claim and what was measured: a failing claim
stops the book's build. A claim is a conclusion that could have come out otherwise;
identities and constructions are tests, kept in ``tests/``.

**One level.** Every comparison of two arms over seeds is a t-test
(:mod:`scipy.stats`) at the book's one level, :data:`LEVEL` (1 %, one-sided): paired
when both arms are :class:`~mla_course.tables.Result` objects with the same seeds
(same initial weights, same batch order), Welch otherwise. Each arm needs at least
:data:`MIN_SEEDS` seeds, and a diverged run is never averaged: it refuses the claim.

- :func:`check_order`: ``higher`` ends above ``lower``: the one-sided test rejects
  "no difference". For a loss, pass the worse (larger) arm as ``higher``.
- :func:`check_equivalent`: the two arms differ by less than ``margin``: both one-sided
  tests of TOST reject at :data:`LEVEL`. This, and only this, says "the same".
- :func:`check_unresolved`: neither one-sided test rejects: the difference is below what
  the seeds resolve. It fails when one arm is significantly better *or* worse, so
  "no gain" cannot hide a loss.

With :data:`LEVEL` at 1 %, about one order claim in a hundred passes by chance when
the difference is not real; the claims page counts them.

**Quick mode.** A claim that the shrunken runs of ``MLA_QUICK=1`` cannot support takes
``full_only=True``: in quick mode it prints ``unchecked in quick mode: <claim>`` and is
recorded as skipped.

**The claims page.** When ``MLA_CLAIMS_DIR`` is set (the docs build sets it, see
``docs/_ext/claims_page.py``), every check is recorded there, one JSON line each (page,
kind, claim, measured, p-value, status), and the book gets a page listing them.
"""

from __future__ import annotations

import json
import math
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy import stats

from .settings import claims_dir, quick

__all__ = [
    "LEVEL",
    "MIN_SEEDS",
    "ClaimFailed",
    "check",
    "check_equivalent",
    "check_order",
    "check_unresolved",
    "compare",
]

LEVEL = 0.01  # the book's one level: 1 %, one-sided
MIN_SEEDS = 3  # fewer seeds give no usable estimate of the noise
WIDTH = 77  # the printed line fits the book's output column
KINDS = ("order", "equivalence", "unresolved", "threshold")


class ClaimFailed(AssertionError):
    """A sentence of the book is not true of this build's measurements."""


def _page() -> Path:
    """The script being run: the page (Sphinx-Gallery sets ``sys.argv[0]`` to it too)."""
    return Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else Path("<interactive>")


def _record(kind: str, statement: str, measured: str, status: str, p: float | None) -> None:
    folder = claims_dir()
    if folder is None:
        return
    page = _page()
    row = {"page": str(page), "kind": kind, "claim": statement, "measured": measured}
    line = json.dumps(row | {"p": p, "status": status})
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / f"{page.stem}.jsonl").open("a", encoding="utf-8") as f:
        f.write(line + "\n")  # one process per page: no interleaving


def _decide(kind: str, statement, ok: bool, measured, full_only: bool, p=None) -> None:
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError(f"statement={statement!r}: expected the claim, in words")
    if not isinstance(measured, str):
        raise TypeError(f"measured={measured!r}: expected a string saying what was measured")
    if full_only and quick():
        print(textwrap.fill(f"unchecked in quick mode: {statement}", WIDTH))
        _record(kind, statement, measured, "skipped (quick mode)", p)
        return
    if not ok:
        _record(kind, statement, measured, "FAILED", p)
        raise ClaimFailed(f"{_page().name}: the claim {statement!r} is false: measured {measured}")
    print(textwrap.fill(f"✓ {statement} — {measured}", WIDTH, subsequent_indent="    "))
    _record(kind, statement, measured, "checked", p)


def check(statement: str, ok: bool, *, measured: str, full_only: bool = False) -> None:
    """Check the claim ``statement``: ``ok`` must be true of this build's ``measured`` value.

    ``measured`` says what was measured, in words and numbers (``"test accuracy 11.35 %"``);
    it is printed, and quoted if the claim fails.
    """
    _decide("threshold", statement, bool(ok), measured, full_only)


# ---------------------------------------------------------------------------
# Two arms over seeds.
# ---------------------------------------------------------------------------


def _arm(x, metric: str, which: str) -> tuple[np.ndarray, list | None]:
    """Per-seed values of a Result (with its seeds) or of a plain sequence (seeds unknown)."""
    if hasattr(x, "values") and callable(x.values) and hasattr(x, "seeds"):
        values, seeds = x.values(metric), list(x.seeds)
    elif isinstance(x, Sequence | np.ndarray) and not isinstance(x, str):
        values, seeds = list(x), None
    else:
        raise TypeError(
            f"{which}={type(x).__name__}: expected a Result or a sequence of per-seed values"
        )
    values = np.asarray([float(v) for v in values])
    if not np.isfinite(values).all():
        raise ClaimFailed(
            f"{_page().name}: {which} has diverged runs ({values.tolist()}); a diverged run "
            "is never averaged into a mean and never supports a claim"
        )
    if len(values) < MIN_SEEDS:
        raise ValueError(
            f"{which} has {len(values)} seeds: a comparison needs at least {MIN_SEEDS} "
            "seeds to know its noise"
        )
    return values, seeds


class _Difference:
    """``a - b`` over seeds, and its one-sided t-tests (paired on shared seeds)."""

    def __init__(self, a, b, metric: str, paired: bool | None, names=("a", "b")):
        self.va, sa = _arm(a, metric, names[0])
        self.vb, sb = _arm(b, metric, names[1])
        same_seeds = sa is not None and sa == sb
        self.paired = same_seeds if paired is None else paired
        if self.paired and len(self.va) != len(self.vb):
            counts = f"{names[0]} has {len(self.va)} seeds, {names[1]} {len(self.vb)}"
            raise ValueError(f"paired=True: {counts}")
        self.scale, self.unit = (100.0, " %") if metric.endswith("_acc") else (1.0, "")
        self.diff = float(self.va.mean() - self.vb.mean())
        if self.paired:
            self.se = float(np.std(self.va - self.vb, ddof=1) / math.sqrt(len(self.va)))
            self.df = len(self.va) - 1.0
        else:
            qa, qb = self.va.var(ddof=1) / len(self.va), self.vb.var(ddof=1) / len(self.vb)
            self.se = math.sqrt(qa + qb)
            den = qa**2 / (len(self.va) - 1) + qb**2 / (len(self.vb) - 1)
            self.df = (qa + qb) ** 2 / den if den else math.inf

    def p(self, alternative: str, shift: float = 0.0) -> float:
        """p-value against "``a - b - shift`` is 0", ``alternative`` ``"greater"`` or ``"less"``."""
        a = self.va - shift
        if self.paired:
            p = stats.ttest_rel(a, self.vb, alternative=alternative).pvalue
        else:
            p = stats.ttest_ind(a, self.vb, equal_var=False, alternative=alternative).pvalue
        if math.isnan(p):  # no noise at all: the sign of the difference decides
            d = float(a.mean() - self.vb.mean())
            p = 0.0 if (d > 0 if alternative == "greater" else d < 0) else 1.0
        return float(p)

    def measured(self, p: float, extra: str = "") -> str:
        s, u = self.scale, self.unit
        f = ".2f" if s == 100 else ".3g"
        test = "paired" if self.paired else "Welch"
        df = f"{self.df:.0f}" if self.paired else f"{self.df:.1f}"
        return (
            f"{self.va.mean() * s:{f}}{u} vs {self.vb.mean() * s:{f}}{u} "
            f"({len(self.va)} and {len(self.vb)} seeds): difference "
            f"{self.diff * s:+{f}} ± {self.se * s:{f}}{u}{extra}, {test} t({df}), p = {p:.2g}"
        )


def check_order(
    statement: str, higher, lower, *, metric="test_acc", paired=None, full_only=False
) -> None:
    """Check that ``higher`` ends above ``lower`` on ``metric``.

    A one-sided t-test at :data:`LEVEL` over the seeds must reject "no difference":
    paired when both arms are Results with the same seeds (or ``paired=True``, for
    per-seed sequences in the same seed order), Welch otherwise.
    """
    d = _Difference(higher, lower, metric, paired, ("higher", "lower"))
    p = d.p("greater")
    _decide("order", statement, p < LEVEL, d.measured(p), full_only, p)


def check_equivalent(
    statement: str, a, b, *, margin, metric="test_acc", paired=None, full_only=False
) -> None:
    """Check that ``a`` and ``b`` differ by less than ``margin`` on ``metric`` (TOST).

    ``margin`` is in the printed units (points of % for an accuracy). Both one-sided
    tests, "the difference is above ``-margin``" and "below ``+margin``", must reject at
    :data:`LEVEL`: "the same" needs evidence, not an absence of it.
    """
    if isinstance(margin, bool) or not isinstance(margin, int | float) or not margin > 0:
        raise ValueError(f"margin={margin!r}: expected a positive number, in printed units")
    d = _Difference(a, b, metric, paired)
    m = margin / d.scale
    p = max(d.p("greater", -m), d.p("less", m))
    measured = d.measured(p, f", margin ±{margin:g}{d.unit} (TOST)")
    _decide("equivalence", statement, p < LEVEL, measured, full_only, p)


def check_unresolved(
    statement: str, a, b, *, metric="test_acc", paired=None, full_only=False
) -> None:
    """Check that the seeds resolve no difference between ``a`` and ``b`` on ``metric``.

    Holds when neither one-sided test ("``a`` above ``b``", "``a`` below ``b``") rejects
    at :data:`LEVEL`; fails when one arm is significantly better *or* worse.
    """
    d = _Difference(a, b, metric, paired)
    p = min(d.p("greater"), d.p("less"))
    measured = d.measured(p, ", smaller one-sided p")
    _decide("unresolved", statement, p >= LEVEL, measured, full_only, p)


def compare(a, b, *, metric="test_acc", paired=None) -> str:
    """``"above"``, ``"below"`` or ``"unresolved"``: where ``a`` ends against ``b`` by the
    one-sided t-tests of :func:`check_order` at :data:`LEVEL`, both ways. For a page that
    reports a measured verdict rather than stating one in advance."""
    d = _Difference(a, b, metric, paired)
    if d.p("greater") < LEVEL:
        return "above"
    return "below" if d.p("less") < LEVEL else "unresolved"
