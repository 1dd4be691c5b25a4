"""sweep and train_network: what they train, what they cache, what they return."""

import ast
import functools
import math
import statistics
import warnings
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from mla_course import cache, engine, losses, runs, settings
from mla_course.augment import GaussianNoise, Mixup
from mla_course.config import Config
from mla_course.runs import build, load_data, sweep, train_network
from mla_course.tables import Table
from mla_course.train import evaluate, fit

SMALL = Config(n_train=500, n_test=200, hidden=(16,), epochs=1, lr=0.5, batch_size=50)
PLAIN_ONLY = SMALL.replace(batch_norm="before")  # the engine does not run batch norm


@pytest.fixture
def trained(monkeypatch):
    """Counts the runs trained by the plain loop and by the engine (cache misses)."""
    counts = {"plain": 0, "batched": []}
    real_fit, real_many = runs._fit, engine.train_many

    def spy_fit(*args, **kwargs):
        counts["plain"] += 1
        return real_fit(*args, **kwargs)

    def spy_many(members, *args, **kwargs):
        counts["batched"].append(len(members))
        return real_many(members, *args, **kwargs)

    monkeypatch.setattr(runs, "_fit", spy_fit)
    monkeypatch.setattr(engine, "train_many", spy_many)
    return counts


def _reference(config, seed, **fit_kwargs):
    """The run of ``config`` by hand, with the plain loop."""
    model, optimizer = build(config, seed)
    train, test = load_data(config)
    kwargs = {"epochs": config.epochs, "batch_size": config.batch_size, "seed": seed}
    return fit(model, optimizer, train, test, **kwargs | fit_kwargs), model


def _assert_model_is_the_history(history, model, config):
    """Evaluated again, the returned network gives the history's last numbers."""
    _, evaluation = load_data(config)
    loss, acc = evaluate(model, [evaluation])
    assert acc == history.test_acc[-1]
    assert loss == pytest.approx(history.test_loss[-1], rel=1e-5)


# --------------------------------------------------------------------------- a table
def test_sweep_is_repeatable_and_summarises_over_seeds():
    table = sweep({"slow": SMALL.replace(lr=1e-3), "fast": SMALL}, seeds=[0, 1, 2])
    assert isinstance(table, Table) and list(table) == ["slow", "fast"]
    assert table.best() == "fast" and table["fast"].seeds == [0, 1, 2]
    result = table["fast"]
    accs = [h.test_acc[-1] for h in result.histories]
    assert result.mean() == pytest.approx(statistics.mean(accs))
    assert result.std() == pytest.approx(statistics.stdev(accs))
    assert len({tuple(h.step_loss) for h in result.histories}) == 3  # seeds differ
    again = sweep({"fast": SMALL}, seeds=[0, 1, 2], engine="plain")
    for a, b in zip(result.histories, again["fast"].histories, strict=True):
        assert a.step_loss == pytest.approx(b.step_loss, rel=1e-4)  # both engines agree


def test_plain_runs_are_the_plain_loop_bit_for_bit():
    history, _ = _reference(SMALL, 2)
    table = sweep({"x": SMALL}, seeds=[2], engine="plain")
    assert table["x"].histories[0].step_loss == history.step_loss


def test_diverged_runs_are_marked_not_raised():
    result = sweep({"x": SMALL.replace(activation="relu", lr=1e30)}, seeds=[0, 1])["x"]
    assert result.diverged == 2 and math.isnan(result.mean())


def test_every_configuration_is_checked_before_any_is_trained(trained):
    with pytest.raises(ValueError, match="engine='batched' cannot run"):
        sweep({"ok": SMALL.replace(lr=0.3), "bn": PLAIN_ONLY}, seeds=[0], engine="batched")
    with pytest.raises(TypeError, match=r"configs\['b'\]=\{'lr': 0.1\}: expected a Config"):
        sweep({"a": SMALL.replace(lr=0.3), "b": {"lr": 0.1}}, seeds=[0])
    with pytest.raises(ValueError, match="engine='fast': expected one of"):
        sweep({"a": SMALL.replace(lr=0.3)}, seeds=[0], engine="fast")
    assert trained == {"plain": 0, "batched": []}


@pytest.mark.parametrize(
    ("seeds", "error", "message"),
    [
        ([], ValueError, "seeds is empty"),
        ([0, 0], ValueError, r"seeds=\[0, 0\]: each seed once"),
        ([True], ValueError, "seed=True"),
        ([-1], ValueError, "seed=-1"),
        ([2**70], ValueError, "seed=1180591620717411303424"),
        (3, TypeError, "seeds=3: expected an iterable"),
    ],
)
def test_bad_seeds_are_refused_by_name(seeds, error, message, trained):
    with pytest.raises(error, match=message):
        sweep({"a": SMALL}, seeds=seeds)
    assert trained == {"plain": 0, "batched": []}


def test_seed_offset_shifts_every_seed_and_keeps_the_labels(monkeypatch):
    unshifted = sweep({"x": SMALL, "y": PLAIN_ONLY}, seeds=[3])
    monkeypatch.setenv("MLA_SEED_OFFSET", "2")
    shifted = sweep({"x": SMALL, "y": PLAIN_ONLY}, seeds=[1])
    assert shifted["x"].seeds == [1]
    for label in ("x", "y"):
        assert shifted[label].histories[0] == unshifted[label].histories[0]
    history, _ = train_network(PLAIN_ONLY, seed=1)
    assert history == unshifted["y"].histories[0]


def test_results_are_cached_by_everything_that_made_them(trained, monkeypatch):
    config = SMALL.replace(hidden=(8,), n_train=300)
    first = sweep({"a": config}, seeds=[1])["a"].histories[0]
    assert trained["batched"] == [1] or trained["plain"] == 1
    trained.update(plain=0, batched=[])
    table = sweep({"same": config, "other lr": config.replace(lr=0.3)}, seeds=[1, 2])
    assert table["same"].histories[0] == first
    assert trained["plain"] + sum(trained["batched"]) == 3  # only the three new runs
    trained.update(plain=0, batched=[])
    sweep({"a": config}, seeds=[1], engine="plain")  # another engine path: another entry
    assert trained["plain"] == 1
    monkeypatch.setenv("MLA_NO_CACHE", "1")
    trained.update(plain=0, batched=[])
    sweep({"a": config}, seeds=[1], engine="plain")
    assert trained["plain"] == 1


def test_a_damaged_history_entry_is_trained_again(trained):
    config = SMALL.replace(hidden=(7,))
    first = sweep({"a": config}, seeds=[0], engine="plain")["a"].histories[0]
    device = runs.settings.get_device()
    parts = runs._parts("history", config, 0, device, "plain")
    for bad in ({}, [], "text", {**first.to_dict(), "extra": 1}, {"test_acc": ["x"]}):
        cache.store(cache.key(parts), bad, parts)
        trained.update(plain=0)
        again = sweep({"a": config}, seeds=[0], engine="plain")["a"].histories[0]
        assert trained["plain"] == 1 and again.step_loss == first.step_loss


# ------------------------------------------------------------------ one network, honestly
@pytest.mark.parametrize("config", [SMALL.replace(lr=0.2), PLAIN_ONLY.replace(lr=0.2)])
def test_train_network_returns_the_network_of_the_sweeps_run(config, trained):
    table = sweep({"x": config, "y": config.replace(lr=0.4)}, seeds=[0, 1])
    trained.update(plain=0, batched=[])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the run alone takes the very steps it took in the sweep
        history, model = train_network(config, seed=1)
    assert trained["plain"] + sum(trained["batched"]) == 1  # to recover the weights
    assert history == table["x"].histories[1]
    _assert_model_is_the_history(history, model, config)
    assert next(model.parameters()).device == runs.settings.get_device()
    trained.update(plain=0, batched=[])
    again, same = train_network(config, seed=1)
    assert trained == {"plain": 0, "batched": []}  # read back, weights included
    assert again == history and all(
        torch.equal(a, b) for a, b in zip(model.parameters(), same.parameters(), strict=True)
    )


def test_a_run_that_does_not_reproduce_is_replaced_and_said():
    config = PLAIN_ONLY.replace(lr=0.25)
    first = sweep({"x": config}, seeds=[0])["x"].histories[0]
    # A cached run from a device that adds in another order (patching the code would change
    # the key: the key covers the code that runs).
    other = first.to_dict()
    other["step_loss"][0] += 1e-3
    parts = runs._parts("history", config, 0, runs.settings.get_device(), "plain")
    cache.store(cache.key(parts), other, parts)
    with pytest.warns(RuntimeWarning, match="did not take the same steps"):
        history, model = train_network(config, seed=0)
    assert history.step_loss == first.step_loss != other["step_loss"]
    _assert_model_is_the_history(history, model, config)
    assert sweep({"x": config}, seeds=[0])["x"].histories[0] == history  # replaced


def test_train_network_trains_what_it_returns(trained):
    config = SMALL.replace(lr=0.15)
    history, model = train_network(config, seed=4)
    assert trained["plain"] + sum(trained["batched"]) == 1
    _assert_model_is_the_history(history, model, config)
    table = sweep({"x": config}, seeds=[4])
    assert table["x"].histories[0] == history  # the sweep reads the same run


def test_damaged_weights_are_trained_again_with_their_history(trained):
    config = PLAIN_ONLY.replace(lr=0.15)
    sweep({"x": config}, seeds=[0])
    device = runs.settings.get_device()
    parts = runs._parts("weights", config, 0, device, "plain")
    cache.store(cache.key(parts), {"net.1.weight": {"dtype": "<f4", "data": "!!"}}, parts)
    trained.update(plain=0)
    history, model = train_network(config, seed=0)
    assert trained["plain"] == 1
    _assert_model_is_the_history(history, model, config)


def test_engine_choice_and_arguments():
    with pytest.raises(TypeError, match=r"expected an mla_course\.config\.Config"):
        train_network({"lr": 0.1})
    with pytest.raises(ValueError, match="seed=-2"):
        train_network(SMALL, seed=-2)
    with pytest.raises(ValueError, match="engine='batched' cannot run"):
        train_network(PLAIN_ONLY, engine="batched")


def test_progress_setting_is_checked(monkeypatch):
    monkeypatch.setenv("MLA_PROGRESS", "maybe")
    with pytest.raises(ValueError, match="MLA_PROGRESS='maybe'"):
        sweep({"x": SMALL}, seeds=[0])
    monkeypatch.setenv("MLA_PROGRESS", "0")
    assert settings.progress() is False
    monkeypatch.setenv("MLA_PROGRESS", "1")
    assert settings.progress() is None  # on a terminal only


# ------------------------------------------------------------------ what a Config says
def test_engine_runs_only_what_it_models():
    assert engine.unsupported(SMALL) is None
    assert engine.unsupported(SMALL.replace(init="xavier_uniform", l1=1e-4, holdout=100)) is None
    for field, value in [
        ("loss", "mse"),
        ("label_smoothing", 0.1),
        ("augment", "noise"),
        ("batch_norm", "after"),
        ("dropout", 0.5),
    ]:
        assert engine.unsupported(SMALL.replace(**{field: value})) is not None, field


def test_mse_loss_is_the_sigmoid_squared_error():
    config = SMALL.replace(loss="mse")
    history = sweep({"x": config}, seeds=[0])["x"].histories[0]
    reference, _ = _reference(config, 0, loss_fn=losses.sigmoid_l2)
    assert history.step_loss == reference.step_loss
    assert history.step_loss[0] < 1.3  # 1/2 sum of 10 squared errors in (0, 1): not a CE


def test_label_smoothing_is_torchs():
    config = SMALL.replace(label_smoothing=0.1)
    history = sweep({"x": config}, seeds=[0])["x"].histories[0]
    smoothed = functools.partial(F.cross_entropy, label_smoothing=0.1)
    reference, _ = _reference(config, 0, loss_fn=smoothed)
    assert history.step_loss == pytest.approx(reference.step_loss, rel=1e-5)
    mse = sweep({"x": config.replace(loss="mse")}, seeds=[0])["x"].histories[0]
    assert mse.step_loss != sweep({"x": SMALL.replace(loss="mse")}, seeds=[0])["x"].histories[0]


@pytest.mark.parametrize(
    ("augment", "kwargs", "transform"),
    [
        ("noise", {"std": 0.5}, lambda g: GaussianNoise(0.5, generator=g)),
        ("mixup", {"alpha": 0.4}, lambda g: Mixup(0.4, generator=g)),
    ],
)
def test_augment_applies_the_named_transform_seeded_by_the_run(augment, kwargs, transform):
    config = SMALL.replace(augment=augment, augment_kwargs=kwargs)
    history = sweep({"x": config}, seeds=[3])["x"].histories[0]
    reference, _ = _reference(config, 3, transform=transform(torch.Generator().manual_seed(3)))
    assert history.step_loss == reference.step_loss
    assert history.step_loss != sweep({"x": SMALL}, seeds=[3])["x"].histories[0].step_loss


def test_validation_split_is_held_out_and_named():
    config = SMALL.replace(holdout=1000, evaluate_on="validation")
    (X, _), (Xv, yv) = load_data(config)
    (X_all, y_all), _ = load_data(SMALL.replace(n_train=None))
    assert len(X) == 500 and torch.equal(Xv, X_all[-1000:]) and torch.equal(yv, y_all[-1000:])
    history, model = train_network(config, seed=0)
    assert history.evaluated_on == "validation" and len(history.step_loss) == 10
    _assert_model_is_the_history(history, model, config)
    table = sweep({"x": config}, seeds=[0])
    assert table["x"].evaluated_on == "validation" and "validation accuracy" in repr(table)
    test = sweep({"x": config.replace(evaluate_on="test")}, seeds=[0])["x"].histories[0]
    assert test.evaluated_on == "test" and test.step_loss == history.step_loss
    everything = load_data(Config(holdout=10_000))[0][0]
    assert len(everything) == 50_000


# ------------------------------------------------------------------------ import layers
PACKAGE = Path(runs.__file__).parent
LESSONS = {"optim", "layers", "init", "losses", "augment", "penalties", "models"}
ALLOWED = {
    **{m: LESSONS for m in LESSONS},
    "settings": set(),
    "data": {"settings"},
    "train": {"data", "settings"},
    "tables": {"train"},
    "config": {"data"} | LESSONS,
    "engine": {"optim", "models", "train", "settings", "penalties"},
    "cache": {"settings"},
    "runs": {"config", "engine", "train", "cache", "tables", "settings", "data"} | LESSONS,
}


def _imports(module: str) -> set[str]:
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mla_course."):
            found.add(node.module.split(".")[1])
    return found


def test_the_import_graph_is_layered():
    for module, allowed in ALLOWED.items():
        extra = _imports(module) - allowed - {module}
        assert not extra, f"{module}.py imports {sorted(extra)}: allowed {sorted(allowed)}"
    # and no cycle among the package's modules
    graph = {p.stem: _imports(p.stem) for p in PACKAGE.glob("*.py") if p.stem != "__init__"}
    state = {}

    def visit(node, path):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", f"import cycle: {' -> '.join([*path, node])}"
        state[node] = "open"
        for nxt in graph.get(node, ()):
            visit(nxt, [*path, node])
        state[node] = "done"

    for node in graph:
        visit(node, [])


def test_threads_building_networks_keep_their_own_seeds():
    """Probe finding 2: the initial weights come from a generator local to each run."""
    from concurrent.futures import ThreadPoolExecutor

    def weights(seed):
        return torch.cat([p.detach().flatten() for p in build(SMALL, seed=seed)[0].parameters()])

    alone = {seed: weights(seed) for seed in range(4)}
    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            together = dict(enumerate(pool.map(weights, range(4))))
            assert all(torch.equal(together[s], alone[s]) for s in alone)


def test_each_page_records_the_compute_of_its_runs(tmp_path, monkeypatch):
    """Issue 21: network-steps and training FLOPs per page, from the configurations."""
    import json

    monkeypatch.setenv("MLA_COMPUTE_DIR", str(tmp_path))
    monkeypatch.setattr("sys.argv", ["plot_99_x.py"])
    config = SMALL.replace(lr=0.37)
    sweep({"a": config}, seeds=[0, 1])
    sweep({"a": config}, seeds=[0, 1])  # from the cache this time
    first, second = map(json.loads, (tmp_path / "plot_99_x.jsonl").read_text().splitlines())
    steps = config.epochs * -(-config.train_size // config.batch_size)
    flops = 6 * config.train_size * config.epochs * (784 * 16 + 16 * 10)
    trained = {"trained_runs": 2, "trained_flops": 2 * flops}
    assert first == {"runs": 2, "steps": 2 * steps, "flops": 2 * flops, **trained}
    assert second["trained_runs"] == 0 and second["flops"] == 2 * flops
