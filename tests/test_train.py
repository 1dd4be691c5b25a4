import math

import pytest
import torch
import torch.nn.functional as F

from mla_course import data
from mla_course.models import MLP
from mla_course.train import History, TrainingDiverged, confusion_matrix, evaluate, fit, predict


@pytest.fixture(scope="module")
def small():
    train = data.load_tensors("mnist", "train", limit=1000)
    test = data.load_tensors("mnist", "test", limit=500)
    return train, test


def _fit(small, seed=0, lr=0.5, epochs=2, activation="sigmoid", **kwargs):
    torch.manual_seed(seed)
    model = MLP([784, 32, 10], activation)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    return fit(model, opt, *small, epochs=epochs, batch_size=50, seed=seed, **kwargs), model


def test_loss_falls_on_a_small_subset(small):
    history, _ = _fit(small, epochs=3)
    assert history.epochs == 3 and len(history.step_loss) == 3 * 20
    assert history.train_loss[-1] < history.train_loss[0] < math.log(10)
    assert history.test_acc[-1] > 0.6  # 10 classes: chance is 0.1
    assert history.time == sorted(history.time) and history.time[0] > 0


def test_same_seed_same_numbers(small):
    a, _ = _fit(small, seed=1)
    b, _ = _fit(small, seed=1)
    c, _ = _fit(small, seed=2)
    assert a.step_loss == b.step_loss and a.test_acc == b.test_acc
    assert a.step_loss != c.step_loss


def test_dataloader_path_gives_the_same_training(small):
    fast, _ = _fit(small, seed=4, epochs=1)
    torch.manual_seed(4)
    model = MLP([784, 32, 10], "sigmoid")
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loader = data.make_loader(
        "mnist", "train", batch_size=50, limit=1000, generator=torch.Generator().manual_seed(4)
    )
    test_loader = data.make_loader("mnist", "test", batch_size=500, limit=500)
    slow = fit(model, opt, loader, test_loader, epochs=1)
    torch.testing.assert_close(torch.tensor(slow.step_loss), torch.tensor(fast.step_loss))
    assert slow.test_acc == pytest.approx(fast.test_acc)


def test_divergence_stops_with_the_step(small):
    with pytest.raises(TrainingDiverged, match=r"became (nan|inf) at step \d+") as err:
        _fit(small, lr=1e30, activation="relu")
    assert err.value.step >= 0
    history, _ = _fit(small, lr=1e30, activation="relu", on_divergence="stop")
    assert history.diverged_at == err.value.step
    assert math.isnan(history.final()["test_acc"]) or history.epochs < 2


def test_early_stop_callback(small):
    history, _ = _fit(small, epochs=5, on_epoch_end=lambda h, m: h.epochs == 2)
    assert history.epochs == 2


def test_evaluate_and_predict_agree(small):
    _, model = _fit(small, epochs=1)
    X, y = small[1]
    loss, acc = evaluate(model, data.iterate_batches(X, y, 128, shuffle=False))
    scores = predict(model, X, batch_size=77)
    assert acc == pytest.approx((scores.argmax(1) == y).float().mean().item())
    assert loss == pytest.approx(F.cross_entropy(scores, y).item(), rel=1e-5)


def test_confusion_matrix_counts():
    y_true = torch.tensor([0, 0, 1, 2, 2, 2])
    y_pred = torch.tensor([0, 1, 1, 2, 0, 2])
    expected = torch.tensor([[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert torch.equal(confusion_matrix(y_true, y_pred, 3), expected)


def test_history_round_trip_and_repr(small):
    history, _ = _fit(small, epochs=1)
    assert History.from_dict(history.to_dict()) == history
    assert "test_acc=" in repr(history) and "evaluated_on" not in repr(history)
    history.evaluated_on = "validation"
    assert "evaluated_on='validation'" in repr(History.from_dict(history.to_dict()))


def test_history_repr_shows_no_nan(small):
    # issue 14, item 7: a run that diverged in its first epoch printed "time=nans"
    diverged, _ = _fit(small, lr=1e30, activation="relu", on_divergence="stop")
    assert diverged.diverged_at is not None and diverged.epochs == 0
    for history in (History(), diverged):
        assert "nan" not in repr(history) and "diverged_at=" in repr(history)


@pytest.mark.parametrize(
    "bad",
    [[], "x", {}, {"test_acc": [0.5]}, {**History().to_dict(), "extra": 1}],
)
def test_history_from_dict_refuses_what_to_dict_does_not_write(bad):
    with pytest.raises((TypeError, ValueError)):
        History.from_dict(bad)
    for field, value in [("test_acc", ["x"]), ("diverged_at", 1.5), ("evaluated_on", None)]:
        with pytest.raises(ValueError, match=f"History.{field}="):
            History.from_dict({**History().to_dict(), field: value})


def test_bad_arguments(small):
    with pytest.raises(ValueError, match="epochs=-1"):
        _fit(small, epochs=-1)
    with pytest.raises(ValueError, match="on_divergence='ignore'"):
        _fit(small, on_divergence="ignore")
