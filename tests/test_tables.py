"""Result and Table: summaries over seeds that never average a diverged run."""

import math
import statistics

import pytest
import torch

from mla_course.config import Config
from mla_course.tables import METRICS, Result, Table
from mla_course.train import History


def _history(acc, loss=1.0, *, diverged=False, epochs=3, evaluated_on="test"):
    """A history whose last epoch has test accuracy ``acc`` (or a run that diverged at step 5)."""
    if diverged:
        return History(step_loss=[2.0] * 5, diverged_at=5, evaluated_on=evaluated_on)
    per_epoch = [acc - 0.1 * (epochs - 1 - i) for i in range(epochs)]
    return History(
        step_loss=[2.0, 1.0],
        train_loss=[loss] * epochs,
        train_acc=per_epoch,
        test_loss=[loss] * epochs,
        test_acc=per_epoch,
        time=[1.0] * epochs,
        evaluated_on=evaluated_on,
    )


def _result(*accs, diverged=0, evaluated_on="test"):
    hs = [_history(a, evaluated_on=evaluated_on) for a in accs]
    hs += [_history(0, diverged=True, evaluated_on=evaluated_on) for _ in range(diverged)]
    return Result(Config(), list(range(len(hs))), hs)


def test_mean_std_sem_over_seeds():
    r = _result(0.9, 0.8, 0.7)
    assert r.values() == pytest.approx([0.9, 0.8, 0.7])
    assert r.mean() == pytest.approx(statistics.mean([0.9, 0.8, 0.7]))
    assert r.std() == pytest.approx(statistics.stdev([0.9, 0.8, 0.7]))
    assert r.sem() == pytest.approx(statistics.stdev([0.9, 0.8, 0.7]) / math.sqrt(3))
    assert r.diverged == 0 and r.evaluated_on == "test"
    assert "n=3" in str(r)


def test_diverged_runs_are_counted_not_averaged():
    r = _result(0.9, 0.7, diverged=1)
    assert r.diverged == 1
    assert math.isnan(r.values()[2])
    assert r.mean() == pytest.approx(0.8)  # over the two finite runs only
    assert r.std() == pytest.approx(statistics.stdev([0.9, 0.7]))
    assert "1 diverged" in str(r)
    every = _result(diverged=2)
    assert math.isnan(every.mean()) and math.isnan(every.std())


def test_a_single_run_has_no_spread():
    r = _result(0.9)
    assert r.mean() == pytest.approx(0.9)
    assert math.isnan(r.std()) and math.isnan(r.sem())
    mean, std = r.curve()
    assert len(mean) == 3 and torch.isnan(std).all()


def test_curve_leaves_diverged_runs_out():
    r = _result(0.9, 0.7, diverged=1)  # the diverged run has no epoch at all
    mean, std = r.curve("test_acc")
    assert mean.tolist() == pytest.approx([0.6, 0.7, 0.8])
    assert std.tolist() == pytest.approx([statistics.stdev([0.9, 0.7])] * 3)
    mean, _ = _result(diverged=2).curve("step_loss")  # all diverged: over all of them
    assert mean.tolist() == [2.0] * 5


def test_best_skips_configurations_with_a_diverged_seed():
    table = Table(
        {
            "steady": _result(0.80, 0.82),
            "lucky": _result(0.95, diverged=1),
            "poor": _result(0.5, 0.6),
        }
    )
    assert table.best() == "steady"
    assert table.best(allow_diverged=True) == "lucky"
    assert table.best("test_acc", largest=False) == "poor"
    with pytest.raises(ValueError, match="every configuration has a diverged seed"):
        Table({"a": _result(0.9, diverged=1)}).best()


def test_best_knows_which_way_is_better():
    low = Result(Config(), [0, 1], [_history(0.9, loss=0.2), _history(0.9, loss=0.3)])
    high = Result(Config(), [0, 1], [_history(0.8, loss=0.9), _history(0.8, loss=1.1)])
    table = Table({"low loss": low, "high loss": high})
    assert table.best("test_loss") == "low loss"  # a loss: smaller is better
    assert table.best("test_acc") == "low loss"
    assert table.best("test_loss", largest=True) == "high loss"


def test_text_and_html_rendering():
    table = Table({"a <b>": _result(0.9, 0.8), "bad": _result(0.7, diverged=1), "x": _result(0.5)})
    text, html = repr(table), table._repr_html_()
    assert text.splitlines()[0].split() == [
        "test",
        "accuracy",
        "test",
        "loss",
        "train",
        "loss",
        "seeds",
    ]
    assert "85.00 ± 7.07%" in text and "2 (1 diverged)" in text
    assert "50.00%" in text and "50.00 ±" not in text  # one run: no spread to show
    assert html.count("<tr>") == 4 and "a &lt;b&gt;" in html and "<b>" not in html
    assert "test accuracy" in html


def test_headers_name_the_split_the_runs_were_evaluated_on():
    table = Table({"a": _result(0.9, 0.8, evaluated_on="validation")})
    assert table["a"].evaluated_on == "validation"
    assert "validation accuracy" in repr(table) and "test accuracy" not in repr(table)
    mixed = Table({"a": _result(0.9, evaluated_on="validation"), "b": _result(0.9)})
    assert "evaluation accuracy" in repr(mixed)


def test_bad_metric_and_mismatched_seeds():
    r = _result(0.9, 0.8)
    for method in (r.values, r.mean, r.std, r.sem):
        with pytest.raises(ValueError, match=r"metric='accuracy': expected one of \['test_acc'"):
            method("accuracy")
    with pytest.raises(ValueError, match="metric='acc'"):
        Table({"a": r}).best("acc")
    with pytest.raises(ValueError, match="2 seeds but 1 histories"):
        Result(Config(), [0, 1], [_history(0.9)])
    assert set(METRICS) >= {"test_acc", "test_loss", "train_acc", "train_loss"}
