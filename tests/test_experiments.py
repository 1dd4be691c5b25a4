import math
import statistics

import pytest

from mla_course.experiments import Config, Table, run, run_seeds, sweep

SMALL = Config(n_train=500, n_test=200, hidden=(16,), epochs=1, lr=0.5, batch_size=50)


def test_config_validation_and_replace():
    assert SMALL.replace(lr=0.1).lr == 0.1 and SMALL.lr == 0.5
    assert Config(hidden=[10, 5]).sizes == [784, 10, 5, 10]
    assert Config(optimizer_kwargs={"momentum": 0.9}).optimizer_kwargs == (("momentum", 0.9),)
    for bad, message in [
        ({"lr": 0}, "lr=0"),
        ({"epochs": 0}, "epochs=0"),
        ({"batch_size": 1.5}, "batch_size=1.5"),
        ({"weight_decay": -1}, "weight_decay=-1"),
    ]:
        with pytest.raises(ValueError, match=message):
            Config(**bad)


def test_run_is_repeatable():
    a, b = run(SMALL, seed=3), run(SMALL, seed=3)
    assert a.step_loss == b.step_loss


def test_run_seeds_mean_and_std():
    result = run_seeds(SMALL, seeds=[0, 1, 2])
    accs = [h.test_acc[-1] for h in result.histories]
    assert result.mean() == pytest.approx(statistics.mean(accs))
    assert result.std() == pytest.approx(statistics.stdev(accs))
    assert len({tuple(h.step_loss) for h in result.histories}) == 3  # seeds differ
    mean, std = result.curve("step_loss")
    assert len(mean) == len(std) == 10


def test_diverged_runs_are_marked_not_raised():
    result = run_seeds(SMALL.replace(activation="relu", lr=1e30), seeds=[0, 1])
    assert result.diverged == 2 and math.isnan(result.mean())


def test_sweep_table_renders_and_finds_the_best():
    table = sweep({"slow": SMALL.replace(lr=1e-3), "fast": SMALL.replace(lr=0.5)}, seeds=[0, 1])
    assert isinstance(table, Table) and list(table) == ["slow", "fast"]
    assert table.best() == "fast"
    html, text = table._repr_html_(), repr(table)
    assert html.count("<tr>") == 3 and "test accuracy" in html and "±" in text
    with pytest.raises(ValueError, match="metric='accuracy'"):
        table["fast"].values("accuracy")


def test_unknown_optimizer_is_reported():
    with pytest.raises(ValueError, match="optimizer='lion'"):
        run(SMALL.replace(optimizer="lion"))


def test_overfitting_setting_has_the_documented_values():
    from mla_course.experiments import OVERFITTING

    documented = {"n_train": 500, "n_test": 2000, "hidden": (256, 256), "activation": "relu"}
    documented |= {"optimizer": "momentum", "lr": 0.05, "epochs": 40}
    assert Config(**documented) == OVERFITTING  # and every other field at its default
    assert OVERFITTING.sizes == [784, 256, 256, 10]


def test_fit_config_trains_like_run_and_takes_a_loss_and_a_transform():
    import torch.nn.functional as F

    from mla_course.experiments import build, fit_config, load_data
    from mla_course.train import fit

    history, model = fit_config(SMALL, seed=2)
    reference = fit(*build(SMALL, 2), *load_data(SMALL), epochs=1, batch_size=50, seed=2)
    assert history.step_loss == reference.step_loss
    assert model.linears[0].weight.shape == (16, 784)
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
