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
    monkeypatch.setenv(claims.CLAIMS_DIR, str(tmp_path))
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
    check_order({"a": B, "b": A}, "a", ">", "b", full_only=True)
    out = capsys.readouterr().out
    assert "unchecked in quick mode: false, but the runs are shrunken" in out
    assert "unchecked in quick mode: a ends above b" in out
    assert [r["status"] for r in record()] == ["skipped (quick mode)"] * 2
    assert record()[1]["kind"] == "order"
    with pytest.raises(ClaimFailed):  # without full_only, quick mode checks too
        check("false", False, measured="x")


def test_order_p_value_is_scipy_paired_with_same_seeds_welch_otherwise(record):
    check_order({"a": Result(A), "b": Result(B)}, "a", ">", "b")
    paired = stats.ttest_rel(A, B, alternative="greater").pvalue
    assert record()[0]["p"] == pytest.approx(paired) and "paired t(4)" in record()[0]["measured"]
    C = [b - 0.01 for b in B]
    check_order({"a": Result(A), "b": Result(C, seeds=range(5, 10))}, "a", ">", "b", claim="x")
    welch = stats.ttest_ind(A, C, equal_var=False, alternative="greater").pvalue
    assert record()[1]["p"] == pytest.approx(welch) and "Welch" in record()[1]["measured"]
    check_order({"a": A, "b": C}, "b", "<", "a")  # plain sequences: Welch
    assert record()[2]["p"] == pytest.approx(welch)
    # pairing removes the shared seed noise
    assert paired < stats.ttest_ind(A, B, equal_var=False, alternative="greater").pvalue
    text = record()[0]["measured"]
    assert text.startswith("a 96.1 % > b 95.1 %: +1.00 ± 0.09 points, paired t(4), p = 0.00")


def test_order_fails_below_the_level(record):
    a, b = [0.95, 0.96, 0.97], [0.945, 0.955, 0.965]  # Welch p ~ 0.28
    assert stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue > LEVEL
    with pytest.raises(ClaimFailed, match="Welch"):
        check_order({"a": a, "b": b}, "a", ">", "b")
    with pytest.raises(ClaimFailed):  # the wrong direction
        check_order({"a": A, "b": B}, "a", "<", "b")
    assert [r["status"] for r in record()] == ["FAILED", "FAILED"]


def test_equivalence_is_two_one_sided_tests_against_the_margin(record):
    rng = np.random.default_rng(0)
    a = list(0.95 + rng.normal(0, 0.001, 10))
    b = list(0.951 + rng.normal(0, 0.001, 10))
    table = {"a": a, "b": b}
    check_equivalent(table, "a", "b", margin=0.5)  # 0.1 points apart, noise ~0.05
    lower = stats.ttest_ind(np.add(a, 0.005), b, equal_var=False, alternative="greater")
    upper = stats.ttest_ind(np.add(a, -0.005), b, equal_var=False, alternative="less")
    assert record()[0]["p"] == pytest.approx(max(lower.pvalue, upper.pvalue))
    assert record()[0]["claim"].startswith("a and b within 0.5 points")
    with pytest.raises(ClaimFailed):  # 0.1 points apart: not within 0.05
        check_equivalent(table, "a", "b", margin=0.05)
    with pytest.raises(ClaimFailed):  # too noisy to show equivalence
        check_equivalent({"a": [0.9, 0.95, 1.0], "b": [0.9, 0.95, 1.0]}, "a", "b", margin=0.5)
    with pytest.raises(ValueError, match="margin"):
        check_equivalent(table, "a", "b", margin=-1)


def test_unresolved_fails_when_significantly_worse_or_better(record):
    check_unresolved({"a": [0.95, 0.96, 0.97], "b": [0.945, 0.955, 0.965]}, "a", "b")
    assert "below what 3 seeds resolve" in record()[0]["claim"]
    for a, b in ((A, B), (B, A)):
        with pytest.raises(ClaimFailed):
            check_unresolved({"a": Result(a), "b": Result(b)}, "a", "b")
    assert record()[1]["kind"] == "unresolved" and record()[1]["status"] == "FAILED"


def test_diverged_arm_and_too_few_seeds_are_refused(record):
    with pytest.raises(ClaimFailed, match="'a' has diverged"):
        check_order({"a": [0.9, math.nan, 0.9], "b": [0.1, 0.1, 0.1]}, "a", ">", "b")
    with pytest.raises(ClaimFailed, match="'b' has diverged"):
        table = {"a": Result(A), "b": Result(B, diverged=1)}
        check_order(table, "a", ">", "b")
    with pytest.raises(ValueError, match="at least 3 seeds"):
        check_order({"a": [0.9, 0.9], "b": [0.1, 0.1, 0.1]}, "a", ">", "b")
    with pytest.raises(KeyError, match="'c' is not in the table"):
        check_order({"a": A, "b": B}, "c", ">", "b")
    with pytest.raises(ValueError, match="op="):
        check_order({"a": A, "b": B}, "a", ">=", "b")


def test_a_loss_prints_three_significant_digits(record):
    table = {"x": Result([0.31, 0.32, 0.33], [0, 1, 2], metric="test_loss"), "y": [1.0, 1.1, 1.2]}
    check_order(table, "x", "<", "y", metric="test_loss")
    assert record()[0]["measured"].startswith("x 0.32 < y 1.1: -0.78 ± 0.058, Welch t(2.0)")


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
