"""The claim checks: each one fails when its sentence is false, and records what it measured."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from mla_course import claims
from mla_course.claims import (
    LEVEL,
    ClaimFailed,
    check,
    check_equivalent,
    check_order,
    check_unresolved,
)
from mla_course.source import show_source

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "_ext"))
import claims_page


@pytest.fixture
def record(tmp_path, monkeypatch):
    """Record claims in a temporary folder, as the docs build does, for a page 'plot_99_x'."""
    monkeypatch.setenv("MLA_CLAIMS_DIR", str(tmp_path))
    monkeypatch.setattr(sys, "argv", [str(tmp_path / "gallery" / "plot_99_x.py")])
    monkeypatch.setenv("MLA_QUICK", "0")

    def read():
        path = tmp_path / "plot_99_x.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines()]

    return read


class Result:
    """The part of mla_course.tables.Result a check reads."""

    def __init__(self, values, seeds=(0, 1, 2, 3, 4), diverged=0, metric="test_acc"):
        self._values, self.seeds, self.diverged, self.metric = values, list(seeds), diverged, metric

    def values(self, metric="test_acc"):
        assert metric == self.metric
        return list(self._values)


A = [0.95, 0.962, 0.971, 0.958, 0.966]
B = [0.941, 0.949, 0.962, 0.95, 0.955]


def test_a_true_claim_is_printed_and_recorded(record, capsys):
    two, one = 2, 1
    check("two is more than one", two > one, measured="2 vs 1")
    assert "✓ two is more than one — 2 vs 1" in capsys.readouterr().out
    check("a long claim " * 10, True, measured="x")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 1 and max(map(len, lines)) <= claims.WIDTH
    assert record()[:1] == [
        {
            "page": str(Path(sys.argv[0]).resolve()),
            "kind": "threshold",
            "claim": "two is more than one",
            "measured": "2 vs 1",
            "p": None,
            "status": "checked",
        }
    ]


def test_a_false_claim_stops_naming_page_claim_and_value(record):
    with pytest.raises(ClaimFailed, match=r"plot_99_x.py: the claim 'one is more' .*: measured 1"):
        one, two = 1, 2
        check("one is more", one > two, measured="1")
    assert record()[0]["status"] == "FAILED"


def test_full_only_claims_are_skipped_visibly_in_quick_mode(record, monkeypatch, capsys):
    monkeypatch.setenv("MLA_QUICK", "1")
    check("false, but the runs are shrunken", False, measured="x", full_only=True)
    check_order("a ends above b", B, A, full_only=True)
    out = capsys.readouterr().out
    assert "unchecked in quick mode: false, but the runs are shrunken" in out
    assert "unchecked in quick mode: a ends above b" in out
    assert [r["status"] for r in record()] == ["skipped (quick mode)"] * 2
    assert record()[1]["kind"] == "order"
    with pytest.raises(ClaimFailed):  # without full_only, quick mode checks too
        check("false", False, measured="x")


def test_order_p_value_is_scipy_paired_with_same_seeds_welch_otherwise(record):
    check_order("a ends above b", Result(A), Result(B))
    paired = stats.ttest_rel(A, B, alternative="greater").pvalue
    assert record()[0]["p"] == pytest.approx(paired) and "paired t(4)" in record()[0]["measured"]
    C = [b - 0.01 for b in B]
    check_order("x", Result(A), Result(C, seeds=range(5, 10)))
    welch = stats.ttest_ind(A, C, equal_var=False, alternative="greater").pvalue
    assert record()[1]["p"] == pytest.approx(welch) and "Welch" in record()[1]["measured"]
    check_order("a ends above c", A, C)  # plain sequences: Welch
    assert record()[2]["p"] == pytest.approx(welch)
    # pairing removes the shared seed noise
    assert paired < stats.ttest_ind(A, B, equal_var=False, alternative="greater").pvalue
    text = record()[0]["measured"]
    assert text.startswith(
        "96.14 % vs 95.14 % (5 and 5 seeds): difference +1.00 ± 0.09 %, paired t(4)"
    )


def test_order_fails_below_the_level(record):
    a, b = [0.95, 0.96, 0.97], [0.945, 0.955, 0.965]  # Welch p ~ 0.28
    assert stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue > LEVEL
    with pytest.raises(ClaimFailed, match="Welch"):
        check_order("a ends above b", a, b)
    with pytest.raises(ClaimFailed):  # the wrong direction
        check_order("b ends above a", B, A)
    assert [r["status"] for r in record()] == ["FAILED", "FAILED"]


def test_equivalence_is_two_one_sided_tests_against_the_margin(record):
    rng = np.random.default_rng(0)
    a = list(0.95 + rng.normal(0, 0.001, 10))
    b = list(0.951 + rng.normal(0, 0.001, 10))
    check_equivalent("a and b within 0.5 points", a, b, margin=0.5)  # 0.1 apart
    lower = stats.ttest_ind(np.add(a, 0.005), b, equal_var=False, alternative="greater")
    upper = stats.ttest_ind(np.add(a, -0.005), b, equal_var=False, alternative="less")
    assert record()[0]["p"] == pytest.approx(max(lower.pvalue, upper.pvalue))
    assert "margin ±0.5 % (TOST)" in record()[0]["measured"]
    with pytest.raises(ClaimFailed):  # 0.1 points apart: not within 0.05
        check_equivalent("within 0.05", a, b, margin=0.05)
    with pytest.raises(ClaimFailed):  # too noisy to show equivalence
        check_equivalent("noisy", [0.9, 0.95, 1.0], [0.9, 0.95, 1.0], margin=0.5)
    with pytest.raises(ValueError, match="margin"):
        check_equivalent("bad", a, b, margin=-1)


def test_unresolved_fails_when_significantly_worse_or_better(record):
    check_unresolved("no resolved difference", [0.95, 0.96, 0.97], [0.945, 0.955, 0.965])
    assert record()[0]["kind"] == "unresolved" and record()[0]["status"] == "checked"
    for a, b in ((A, B), (B, A)):
        with pytest.raises(ClaimFailed):
            check_unresolved("no resolved difference", Result(a), Result(b))
    assert record()[1]["kind"] == "unresolved" and record()[1]["status"] == "FAILED"


def test_diverged_arm_and_too_few_seeds_are_refused(record):
    with pytest.raises(ClaimFailed, match="higher has diverged"):
        check_order("x", [0.9, math.nan, 0.9], [0.1, 0.1, 0.1])
    with pytest.raises(ClaimFailed, match="lower has diverged"):
        check_order("x", Result(A), Result([*B[:4], math.inf]))
    with pytest.raises(ValueError, match="at least 3 seeds"):
        check_order("x", [0.9, 0.9], [0.1, 0.1, 0.1])
    with pytest.raises(TypeError, match="higher=str"):
        check_order("x", "a", B)
    with pytest.raises(ValueError, match="paired=True"):
        check_order("x", A, B[:3], paired=True)


def test_a_loss_prints_three_significant_digits(record):
    x = Result([0.31, 0.32, 0.33], [0, 1, 2], metric="test_loss")
    check_order("y's loss ends above x's", [1.0, 1.1, 1.2], x, metric="test_loss")
    assert record()[0]["measured"].startswith(
        "1.1 vs 0.32 (3 and 3 seeds): difference +0.78 ± 0.058"
    )


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="statement"):
        check("", True, measured="x")
    with pytest.raises(TypeError, match="measured"):
        check("x", True, measured=0.5)


def test_claims_page_counts_kinds_and_chance_failures(tmp_path):
    gallery = tmp_path / "gallery"
    page = gallery / "01_a" / "plot_01_b.py"

    def r(kind, status="checked", claim="y"):
        return {
            "page": str(page),
            "kind": kind,
            "claim": claim,
            "measured": "3 %",
            "p": None,
            "status": status,
        }

    records = [
        r("threshold", claim="x_1 * 2"),
        *[r("order")] * 4,
        r("equivalence"),
        r("unresolved"),
        r("order", "skipped (quick mode)"),
    ]
    text = claims_page.claims_page(records, gallery)
    assert ":doc:`/auto_examples/01_a/plot_01_b`" in text
    assert "x\\_1 \\* 2" in text  # escaped for reST
    assert "7 claims checked on 1 pages: 4 order, 1 equivalence, 1 unresolved, 1 threshold" in text
    assert "1 not checked" in text
    assert "of the 4 order claims" in text and "at most 0.04 (= 0.01 x 4)" in text


def test_show_source_is_the_package_source():
    from mla_course import optim

    shown = show_source(optim.sgd_update)
    assert "def sgd_update" in repr(shown) and "mla_course.optim.sgd_update" in repr(shown)
    assert 'class="highlight"' in shown._repr_html_()
    with pytest.raises(TypeError, match="obj="):
        show_source(3)


def test_compare_reports_the_two_one_sided_tests():
    assert claims.compare(Result(A), Result(B)) == "above"
    assert claims.compare(Result(B), Result(A)) == "below"
    assert claims.compare([0.95, 0.96, 0.97], [0.945, 0.955, 0.965]) == "unresolved"
