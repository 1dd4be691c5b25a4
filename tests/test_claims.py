"""The claim checks: each one fails when its sentence is false, and records what it measured."""

import json
import math
import sys
from pathlib import Path

import pytest

from mla_course import claims
from mla_course.claims import ClaimFailed, check, check_order, check_within_noise
from mla_course.source import show_source


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


def test_a_true_claim_is_printed_and_recorded(record, capsys):
    two, one = 2, 1
    check("two is more than one", two > one, measured="2 vs 1")
    assert "[claim checked] two is more than one (measured: 2 vs 1)" in capsys.readouterr().out
    check("a long claim " * 10, True, measured="x")
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 1 and max(map(len, lines)) <= claims.WIDTH
    assert record()[:1] == [
        {
            "page": str(Path(sys.argv[0]).resolve()),
            "claim": "two is more than one",
            "measured": "2 vs 1",
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
    assert "[claim skipped in quick mode]" in capsys.readouterr().out
    assert record()[0]["status"] == "skipped (quick mode)"
    with pytest.raises(ClaimFailed):  # without full_only, quick mode checks too
        check("false", False, measured="x")


def test_order_needs_a_gap_beyond_two_standard_errors(record):
    check_order("a beats b", [0.95, 0.96, 0.97], [0.90, 0.91, 0.92])
    with pytest.raises(ClaimFailed, match="gap"):  # gap 0.01, standard error ~0.008
        check_order("a beats b by little", [0.95, 0.96, 0.97], [0.94, 0.95, 0.96])
    check_within_noise("a and b tie", [0.95, 0.96, 0.97], [0.94, 0.95, 0.96])
    with pytest.raises(ClaimFailed):
        check_within_noise("a and b tie", [0.95, 0.96, 0.97], [0.90, 0.91, 0.92])


def test_order_refuses_diverged_runs_and_too_few_seeds(record):
    with pytest.raises(ClaimFailed, match="diverged"):
        check_order("a beats b", [0.9, math.nan, 0.9], [0.1, 0.1, 0.1])
    with pytest.raises(ValueError, match="at least 3 seeds"):
        check_order("a beats b", [0.9, 0.9], [0.1, 0.1, 0.1])


def test_order_reads_results_per_metric(record):
    class Result:  # the part of mla_course.tables.Result a check reads
        def values(self, metric):
            return {"test_acc": [0.9, 0.91, 0.92], "test_loss": [0.3, 0.31, 0.32]}[metric]

    check_order("loss above accuracy?", [1.0, 1.0, 1.0], Result(), metric="test_loss")
    assert "gap 0.69" in record()[0]["measured"]


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="statement"):
        check("", True, measured="x")
    with pytest.raises(TypeError, match="measured"):
        check("x", True, measured=0.5)


def test_claims_page_lists_each_claim_with_a_link(tmp_path):
    gallery = tmp_path / "gallery"
    page = gallery / "01_a" / "plot_01_b.py"
    records = [
        {"page": str(page), "claim": "x_1 * 2", "measured": "3 %", "status": "checked"},
        {"page": str(page), "claim": "y", "measured": "4", "status": "skipped (quick mode)"},
    ]
    text = claims._claims_page(records, gallery)
    assert ":doc:`/auto_examples/01_a/plot_01_b`" in text
    assert "x\\_1 \\* 2" in text  # escaped for reST
    assert "1 claims checked on 1 pages" in text


def test_show_source_is_the_package_source():
    from mla_course import optim

    shown = show_source(optim.sgd_update)
    assert "def sgd_update" in repr(shown) and "mla_course.optim.sgd_update" in repr(shown)
    assert 'class="highlight"' in shown._repr_html_()
    with pytest.raises(TypeError, match="obj="):
        show_source(3)
