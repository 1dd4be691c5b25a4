"""Transitional: mla_course.experiments re-exports the new modules until the pages move.

Delete this file together with mla_course/experiments.py.
"""

import math

import pytest
import torch.nn.functional as F

from mla_course import config, runs, tables
from mla_course.experiments import (
    OVERFITTING,
    Config,
    Result,
    Table,
    build,
    fit_config,
    load_data,
    run,
    run_seeds,
    sweep,
)
from mla_course.train import fit

SMALL = Config(n_train=500, n_test=200, hidden=(16,), epochs=1, lr=0.5, batch_size=50)


def test_the_names_are_the_new_modules_names():
    assert Config is config.Config and OVERFITTING is config.OVERFITTING
    assert Result is tables.Result and Table is tables.Table
    assert build is runs.build and load_data is runs.load_data


def test_old_wrappers_run_through_the_new_ones():
    history, model = run(SMALL, seed=3, return_model=True)
    assert run(SMALL, seed=3) == history
    assert runs.train_network(SMALL, 3)[0] == history
    assert sweep({"x": SMALL}, [3], None)["x"].histories[0] == history
    result = run_seeds(SMALL, seeds=[3, 4])
    assert result.histories[0] == history and result.seeds == [3, 4]
    assert model.linears[0].weight.shape == (16, 784)


def test_fit_config_is_the_plain_loop_with_a_loss_and_a_transform():
    history, _ = fit_config(SMALL, seed=2)
    reference = fit(*build(SMALL, 2), *load_data(SMALL), epochs=1, batch_size=50, seed=2)
    assert history.step_loss == reference.step_loss
    calls = {"loss": 0, "transform": 0}

    def loss_fn(scores, y):
        calls["loss"] += 1
        return 2 * F.cross_entropy(scores, y)

    def transform(x, y):
        calls["transform"] += 1
        return x, y

    doubled, _ = fit_config(SMALL, seed=2, loss_fn=loss_fn, transform=transform)
    steps = SMALL.n_train // SMALL.batch_size
    assert calls == {"loss": steps, "transform": steps}
    assert math.isclose(doubled.step_loss[0], 2 * history.step_loss[0], rel_tol=1e-5)
    with pytest.raises(ValueError, match="optimizer='lion'"):
        SMALL.replace(optimizer="lion")
