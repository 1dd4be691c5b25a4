"""The shared figure helpers draw what they are given."""

import matplotlib

matplotlib.use("agg")
import matplotlib.pyplot as plt
import pytest
import torch
from matplotlib.collections import PolyCollection

from mla_course import plots
from mla_course.config import Config
from mla_course.tables import Result
from mla_course.train import History


def history(offset):
    """A three-epoch history whose values are shifted by ``offset``."""
    return History(
        train_loss=[1.0 + offset, 0.5 + offset, 0.2 + offset],
        test_loss=[1.2 + offset, 0.9 + offset, 1.1 + offset],
        train_acc=[0.5, 0.7, 0.9],
        test_acc=[0.6 + offset, 0.7 + offset, 0.75 + offset],
    )


TABLE = {
    "a": Result(Config(), [0, 1], [history(0.0), history(0.1)]),
    "b": Result(Config(lr=0.5), [0, 1], [history(0.2), history(0.4)]),
}


def test_plot_table_curves_draws_one_mean_line_per_label_and_panel():
    axes = plots.plot_table_curves(TABLE)
    assert len(axes) == 3
    for ax, metric in zip(axes, ("train_loss", "test_loss", "test_acc"), strict=True):
        scale = 100 if metric == "test_acc" else 1
        assert [line.get_label() for line in ax.get_lines()] == ["a", "b"]
        for line, label in zip(ax.get_lines(), TABLE, strict=True):
            mean, _ = TABLE[label].curve(metric)
            torch.testing.assert_close(torch.as_tensor(line.get_ydata()), scale * mean)
            assert list(line.get_xdata()) == [1, 2, 3]
        assert ax.get_ylabel() == plots.METRIC_LABELS[metric]
    # train loss: log scale, mean only; the others: a band of one std per label
    assert axes[0].get_yscale() == "log" and axes[1].get_yscale() == "linear"
    bands = [[c for c in ax.collections if isinstance(c, PolyCollection)] for ax in axes]
    assert [len(b) for b in bands] == [0, 2, 2]
    mean, std = TABLE["b"].curve("test_acc")
    ys = torch.as_tensor(bands[2][1].get_paths()[0].vertices[:, 1])
    assert torch.isclose(ys.max(), (100 * (mean + std)).max().double())
    assert torch.isclose(ys.min(), (100 * (mean - std)).min().double())
    assert axes[0].get_title() == "Training loss: mean over seeds"
    assert axes[2].get_title() == "Test accuracy: mean ± std over seeds"
    plt.close("all")


def test_plot_table_curves_labels_metrics_and_log_band():
    axes = plots.plot_table_curves(
        TABLE, ["b"], metrics=("train_loss", "test_acc"), log_band=True, figsize=(8, 3)
    )
    assert len(axes) == 2 and tuple(axes[0].figure.get_size_inches()) == (8, 3)
    assert [line.get_label() for line in axes[1].get_lines()] == ["b"]
    assert len(axes[0].collections) == 1  # the band is drawn on the log panel too
    assert axes[0].get_title() == "Training loss: mean ± std over seeds"
    plt.close("all")


def test_plot_table_curves_rejects_unknown_metrics_and_labels():
    with pytest.raises(ValueError, match="'time' is not one of"):
        plots.plot_table_curves(TABLE, metrics=("time",))
    with pytest.raises(ValueError, match=r"labels=\['c'\] are not in the table"):
        plots.plot_table_curves(TABLE, ["a", "c"])
    plt.close("all")


def test_block_average_matches_average_pooling():
    values = torch.rand(103, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    steps, means = plots.block_average(values.tolist(), 10)
    expected = torch.nn.functional.avg_pool1d(values[None, None], 10, 10)[0, 0]
    torch.testing.assert_close(means, expected)  # the last 3 values are dropped
    assert steps.tolist() == list(range(0, 100, 10)) and means.dtype == torch.float64
    steps, means = plots.block_average(values, 1)
    assert torch.equal(means, values) and steps.tolist() == list(range(103))
    with pytest.raises(ValueError, match="window=0: expected an integer >= 1"):
        plots.block_average(values, 0)
    with pytest.raises(ValueError, match=r"values of shape \(2, 3\)"):
        plots.block_average(torch.zeros(2, 3), 2)


def test_figure_problems_finds_what_a_reader_would_stumble_on():
    import matplotlib.pyplot as plt

    plots.use_style()
    fig, (a, b) = plt.subplots(1, 2, figsize=(8, 3))
    a.plot([0, 1], [0, 1], label="tiny")
    a.legend(fontsize=6)
    b.plot([0, 1], [1, 0])
    b.set(xlabel="step", ylabel="loss", title="B")
    b.text(0.5, 0.5, "here", transform=b.transAxes)
    b.text(0.5, 0.5, "there", transform=b.transAxes)
    problems = plots.figure_problems(fig)
    assert "axes 0 (untitled): no x label" in problems
    assert "axes 0 (untitled): legend text 'tiny' at 6 pt" in problems
    assert any("'here' overlaps" in p and "'there'" in p for p in problems)
    assert not [p for p in problems if p.startswith("axes 1") and "label" in p]
    plt.close(fig)


def test_the_package_figures_have_no_such_problem():
    import matplotlib.pyplot as plt

    from mla_course import surfaces

    plots.use_style()
    curves = {"a": [1.0, 0.5, 0.25], "b": [1.0, 0.7, 0.6]}
    for ax in (
        plots.plot_curves(curves, ylabel="loss", title="curves"),
        plots.plot_confusion(torch.eye(3, dtype=torch.long) * 5, ["0", "1", "2"]),
        plots.draw_surface(surfaces.quadratic(), {"GD": torch.zeros(3, 2)}),
    ):
        assert plots.figure_problems(ax.figure) == []
        plt.close(ax.figure)
