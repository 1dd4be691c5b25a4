"""Claims: every sentence of the book that states a number, an order or a trend is checked.

A page states a conclusion in its prose and checks it in the code right above::

    check("the tutorial's settings leave the network near chance",
          acc < 0.2, measured=f"test accuracy {acc:.2%}")
    check_order("ReLU ends above sigmoid", table["relu"], table["sigmoid"])

Each check prints one line (so the page shows what this build measured) and,
when it fails, raises :class:`ClaimFailed` with the page, the claim and the
measured value: a failing claim stops the book's build.

**A check knows its noise.** :func:`check_order` compares two means over seeds
and holds only when the gap exceeds ``z`` standard errors of the difference
(``z = 2``, at least 3 seeds on each side, no diverged run);
:func:`check_within_noise` checks the opposite, for the sentences that say
"within noise". A sentence checked this way holds whatever the seeds
(``MLA_SEED_OFFSET`` shifts every seed of the book to try it).

**Quick mode.** A claim that the shrunken runs of ``MLA_QUICK=1`` cannot support
takes ``full_only=True``: in quick mode it is printed as skipped, not checked.

**The claims page.** When ``MLA_CLAIMS_DIR`` is set (the docs build sets it, see
:func:`setup`), every check is recorded there, and the book gets a page listing
each claim with the value this build measured and a link to its page.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from .utils import quick

__all__ = [
    "ClaimFailed",
    "check",
    "check_order",
    "check_within_noise",
    "summary",
]

MIN_SEEDS = 3  # fewer seeds give no usable estimate of the noise
WIDTH = 77  # the printed line fits the book's output column
CLAIMS_DIR = "MLA_CLAIMS_DIR"


class ClaimFailed(AssertionError):
    """A sentence of the book is not true of this build's measurements."""


def _page() -> Path:
    """The script being run: the page (Sphinx-Gallery sets ``sys.argv[0]`` to it too)."""
    return Path(sys.argv[0]).resolve() if sys.argv and sys.argv[0] else Path("<interactive>")


def _record(statement: str, measured: str, status: str) -> None:
    folder = os.environ.get(CLAIMS_DIR)
    if not folder:
        return
    page = _page()
    line = json.dumps(
        {"page": str(page), "claim": statement, "measured": measured, "status": status}
    )
    path = Path(folder) / f"{page.stem}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:  # one process per page: no interleaving
        f.write(line + "\n")


def _print(line: str) -> None:
    print(textwrap.fill(line, WIDTH, subsequent_indent="    ", break_on_hyphens=False))


def check(statement: str, ok: bool, *, measured: str, full_only: bool = False) -> None:
    """Check the claim ``statement``: ``ok`` must be true of this build's ``measured`` value.

    ``measured`` says what was measured, in words and numbers
    (``"test accuracy 11.35 %"``); it is printed, and quoted if the claim fails.
    """
    if not isinstance(statement, str) or not statement.strip():
        raise ValueError(f"statement={statement!r}: expected the claim, in words")
    if not isinstance(measured, str):
        raise TypeError(f"measured={measured!r}: expected a string saying what was measured")
    if full_only and quick():
        _print(f"[claim skipped in quick mode] {statement} (measured: {measured})")
        _record(statement, measured, "skipped (quick mode)")
        return
    if not ok:
        _record(statement, measured, "FAILED")
        raise ClaimFailed(f"{_page().name}: the claim {statement!r} is false: measured {measured}")
    _print(f"[claim checked] {statement} (measured: {measured})")
    _record(statement, measured, "checked")


def _values(x, metric: str) -> list[float]:
    """Per-seed values of a :class:`~mla_course.tables.Result` (or a plain sequence)."""
    values = x.values(metric) if hasattr(x, "values") and callable(x.values) else x
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise TypeError(f"expected a Result or a sequence of numbers, got {type(x).__name__}")
    return [float(v) for v in values]


def summary(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean of per-seed values."""
    if len(values) < 2:
        return float(values[0]), math.inf
    return statistics.fmean(values), statistics.stdev(values) / math.sqrt(len(values))


def _compare(a, b, metric: str, scale: float, unit: str):
    va, vb = _values(a, metric), _values(b, metric)
    for name, v in (("first", va), ("second", vb)):
        if any(not math.isfinite(x) for x in v):
            raise ClaimFailed(
                f"{_page().name}: the {name} group has diverged runs ({v}); "
                "a diverged run is never averaged into a mean: compare finite runs only"
            )
        if len(v) < MIN_SEEDS:
            raise ValueError(
                f"{len(v)} seeds in the {name} group: an order or a tie needs at least "
                f"{MIN_SEEDS} seeds to know its noise"
            )
    (ma, sa), (mb, sb) = summary(va), summary(vb)
    gap, noise = ma - mb, math.hypot(sa, sb)
    measured = (
        f"{ma * scale:.2f} ± {sa * scale:.2f}{unit} vs {mb * scale:.2f} ± {sb * scale:.2f}{unit}"
        f" (mean ± s.e., {len(va)} and {len(vb)} seeds): gap {gap * scale:.2f}{unit}, "
        f"{gap / noise if noise else math.inf:.1f} s.e."
    )
    return gap, noise, measured


def _scale(metric: str) -> tuple[float, str]:
    return (100.0, " %") if metric.endswith("_acc") else (1.0, "")


def check_order(
    statement: str,
    higher,
    lower,
    *,
    metric: str = "test_acc",
    z: float = 2.0,
    full_only: bool = False,
) -> None:
    """Check that ``higher`` beats ``lower`` on ``metric`` by more than ``z`` standard errors.

    ``higher`` and ``lower`` are :class:`~mla_course.tables.Result` objects (or sequences
    of per-seed values). For a loss, where lower is better, pass the better one as
    ``lower``: the check is only about which mean is larger.
    """
    gap, noise, measured = _compare(higher, lower, metric, *_scale(metric))
    check(statement, gap > z * noise, measured=measured, full_only=full_only)


def check_within_noise(
    statement: str, a, b, *, metric: str = "test_acc", z: float = 2.0, full_only: bool = False
) -> None:
    """Check that ``a`` and ``b`` differ by less than ``z`` standard errors on ``metric``."""
    gap, noise, measured = _compare(a, b, metric, *_scale(metric))
    check(statement, abs(gap) <= z * noise, measured=measured, full_only=full_only)


# ---------------------------------------------------------------------------
# The book's page of claims (a Sphinx extension: ``extensions = ["mla_course.claims"]``).
# ---------------------------------------------------------------------------


def _escape(text: str) -> str:
    """Plain text, safe inside reStructuredText."""
    for char in "\\`*_|":
        text = text.replace(char, "\\" + char)
    return text


def _claims_page(records: list[dict], gallery: Path) -> str:
    lines = [
        ".. This page is generated by mla_course.claims at every build: do not edit.",
        "",
        "Every claim, checked",
        "====================",
        "",
        "Each sentence of the book that states a number, an order or a trend stands under",
        "a check in the page's code (:mod:`mla_course.claims`). This build measured the",
        "values below; a false claim would have stopped it. Build: |build_device|,",
        "|build_mode|.",
        "",
    ]
    pages: dict[str, list[dict]] = {}
    for r in records:
        pages.setdefault(r["page"], []).append(r)
    checked = sum(r["status"] == "checked" for r in records)
    lines += [f"{checked} claims checked on {len(pages)} pages.", ""]
    for page in sorted(pages):
        rel = Path(page).relative_to(gallery).with_suffix("")
        lines += [
            f":doc:`/auto_examples/{rel.as_posix()}`",
            "-" * 80,
            "",
            ".. list-table::",
            "   :header-rows: 1",
            "   :widths: 50 40 10",
            "   :class: mla-claims",
            "",
            "   * - claim",
            "     - measured",
            "     - status",
        ]
        for r in pages[page]:
            lines += [
                f"   * - {_escape(r['claim'])}",
                f"     - {_escape(r['measured'])}",
                f"     - {r['status']}",
            ]
        lines.append("")
    return "\n".join(lines) + "\n"


def _claims_dir(app) -> Path:
    return Path(app.doctreedir) / "mla_claims"


def _start(app) -> None:
    folder = _claims_dir(app)
    for old in folder.glob("*.jsonl"):
        old.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    os.environ[CLAIMS_DIR] = str(folder)  # inherited by the pages, also in parallel workers


def _write_page(app) -> None:
    records = []
    for path in sorted(_claims_dir(app).glob("*.jsonl")):
        records += [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    dirs = app.config.sphinx_gallery_conf["examples_dirs"]
    dirs = [dirs] if isinstance(dirs, str) else dirs
    gallery = (Path(app.srcdir) / dirs[0]).resolve()
    text = _claims_page(records, gallery)
    page = Path(app.srcdir) / "claims.rst"
    if not page.exists() or page.read_text("utf-8") != text:
        page.write_text(text, "utf-8")


def setup(app):
    """Sphinx extension: record the pages' claims, then write ``claims.rst``."""
    app.connect("builder-inited", _start, priority=100)  # before Sphinx-Gallery runs the pages
    app.connect("builder-inited", _write_page, priority=900)  # after it
    return {"parallel_read_safe": True, "parallel_write_safe": True}
