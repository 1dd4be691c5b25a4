"""Config: every field checked when it is made, each error naming the field, value and range."""

import json
import math

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mla_course.augment import TRANSFORMS
from mla_course.config import LOSSES, OVERFITTING, SPLIT_SIZES, Config
from mla_course.init import INITS
from mla_course.models import ACTIVATIONS
from mla_course.optim import OPTIMIZERS


def test_replace_sizes_and_normalised_spellings():
    small = Config(lr=0.5)
    assert small.replace(lr=0.1).lr == 0.1 and small.lr == 0.5
    assert Config(hidden=[10, 5]).sizes == [784, 10, 5, 10]
    assert Config(optimizer_kwargs={"momentum": 0.9}, optimizer="momentum").optimizer_kwargs == (
        ("momentum", 0.9),
    )
    # One spelling per run: an int learning rate is the same run as its float.
    assert Config(lr=1) == Config(lr=1.0) and isinstance(Config(lr=1).lr, float)
    assert json.dumps(Config(lr=1).to_dict()) == json.dumps(Config(lr=1.0).to_dict())
    adam = Config(optimizer="adam", optimizer_kwargs={"betas": [0.9, 0.99]})
    assert adam.optimizer_kwargs == (("betas", (0.9, 0.99)),)
    noise = OVERFITTING.replace(augment="noise", augment_kwargs={"std": 0.5})
    assert noise.augment_kwargs == (("std", 0.5),) and hash(noise) != hash(OVERFITTING)


def test_overfitting_setting_has_the_documented_values():
    documented = {"n_train": 500, "n_test": 2000, "hidden": (256, 256), "activation": "relu"}
    documented |= {"optimizer": "momentum", "lr": 0.05, "epochs": 40}
    assert Config(**documented) == OVERFITTING  # and every other field at its default
    assert OVERFITTING.sizes == [784, 256, 256, 10]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        # issue 14, item 6, one by one
        ({"activation": "relux"}, r"activation='relux': expected one of \['elu'"),
        ({"optimizer": "lion"}, r"optimizer='lion': expected one of \['adagrad'"),
        ({"init": "he"}, r"init='he': expected one of \['constant'"),
        ({"batch_norm": "middle"}, r"batch_norm='middle': expected one of \[None, 'before'"),
        ({"dropout": 1.5}, r"dropout=1.5: expected a finite number in \[0, 1\)"),
        ({"hidden": (0,)}, r"hidden=\(0,\): expected a tuple of positive ints"),
        ({"hidden": (-3, 5)}, r"hidden=\(-3, 5\)"),
        ({"lr": math.inf}, "lr=inf: expected a finite number > 0"),
        ({"l1": math.nan}, "l1=nan: expected a finite number >= 0"),
        ({"weight_decay": math.nan}, "weight_decay=nan"),
        (
            {"optimizer": "momentum", "optimizer_kwargs": {"momentum": math.nan}},
            r"optimizer_kwargs\['momentum'\]=nan: expected a finite number",
        ),
        ({"batch_size": True}, "batch_size=True: expected an integer >= 1"),
        ({"n_train": 10**6}, r"n_train=1000000: expected at most 60000 \(the 60000 training"),
        ({"n_test": 10**6}, r"n_test=1000000: expected an integer in \[1, 10000\]"),
        ({"weight_decay": "x"}, "weight_decay='x': expected a finite number >= 0"),
        ({"hidden": 120}, r"hidden=120: expected a tuple of positive ints, e.g. \(120,\)"),
        # and the rest
        ({"lr": 0}, "lr=0: expected a finite number > 0"),
        ({"epochs": 0}, "epochs=0: expected an integer >= 1"),
        ({"batch_size": 1.5}, "batch_size=1.5"),
        ({"weight_decay": -1}, "weight_decay=-1"),
        (
            {"dataset": "cifar10"},
            r"dataset='cifar10': expected one of \['fashion-mnist', 'mnist'\]",
        ),
        ({"loss": "l2"}, r"loss='l2': expected one of \['cross_entropy', 'mse'\]"),
        ({"label_smoothing": 1.0}, r"label_smoothing=1.0: expected a finite number in \[0, 1\)"),
        ({"augment": "rotate"}, r"augment='rotate': expected one of \['cutmix', 'cutout'"),
        (
            {"evaluate_on": "train"},
            r"evaluate_on='train': expected one of \['test', 'validation'\]",
        ),
        ({"evaluate_on": "validation"}, "evaluate_on='validation': expected 'test' when holdout=0"),
        ({"holdout": -1}, r"holdout=-1: expected an integer in \[0, 59999\]"),
        ({"holdout": 60_000}, "holdout=60000"),
        (
            {"n_train": 59_000, "holdout": 2000},
            r"n_train=59000: expected at most 58000 \(.*less holdout=2000\)",
        ),
        ({"optimizer_kwargs": {"momentum": 0.9}}, r"arguments of optimizer='sgd' among \[\]"),
        (
            {"optimizer": "adam", "optimizer_kwargs": {"beta": 0.9}},
            r"arguments of optimizer='adam' among \['betas', 'bias_correction', 'eps'\]",
        ),
        (
            {"optimizer": "momentum", "optimizer_kwargs": {"momentum": 1.5}},
            r"optimizer_kwargs=\{'momentum': 1.5\} for Momentum: momentum=1.5",
        ),
        (
            {"optimizer": "adam", "optimizer_kwargs": {"bias_correction": 1}},
            r"optimizer_kwargs\['bias_correction'\]=1: expected True or False",
        ),
        ({"optimizer_kwargs": {"weight_decay": 0.1}}, "'weight_decay'.*Config fields"),
        ({"optimizer_kwargs": 0.9}, r"optimizer_kwargs=0.9: expected a dict"),
        ({"augment_kwargs": {"std": 0.5}}, r"augment_kwargs=.*expected \(\) when augment=None"),
        (
            {"augment": "noise", "augment_kwargs": {"sigma": 0.5}},
            r"arguments of augment='noise' among \['std'\]",
        ),
        ({"augment": "cutout", "augment_kwargs": {"size": 12.5}}, r"augment_kwargs\['size'\]=12.5"),
        ({"augment": "mixup", "augment_kwargs": {"alpha": 0}}, "for Mixup: alpha=0"),
        (
            {"augment": "shift_rotate", "augment_kwargs": {"max_degrees": 400}},
            "for ShiftRotate: max_degrees=400",
        ),
    ],
)
def test_bad_fields_are_refused_by_name_value_and_range(bad, message):
    with pytest.raises(ValueError, match=message):
        Config(**bad)


def test_unknown_field_is_refused_by_name():
    with pytest.raises(TypeError, match="lrr"):
        Config(lrr=0.1)


def test_every_registered_name_is_accepted():
    for name in ACTIVATIONS:
        Config(activation=name)
    for name in INITS:
        Config(init=name)
    for name in OPTIMIZERS:
        Config(optimizer=name)
    for name in LOSSES:
        Config(loss=name)
    for name in TRANSFORMS:
        Config(augment=name)
    for position in (None, "before", "after"):
        Config(batch_norm=position)
    assert Config(holdout=10_000, evaluate_on="validation").train_size == 50_000
    assert Config(n_train=500, holdout=2000).train_size == 500
    assert Config(n_train=SPLIT_SIZES["train"]).train_size == 60_000


# --------------------------------------------------------------------------- properties
FIELDS = [f for f in Config.__dataclass_fields__]
# For each field, values that are of the wrong kind or out of range.
not_a_number = st.one_of(
    st.text(max_size=3), st.none(), st.booleans(), st.lists(st.integers(), max_size=2)
)
non_finite = st.sampled_from([math.inf, -math.inf, math.nan])
BAD = {
    "dataset": st.text(max_size=8).filter(lambda s: s not in ("mnist", "fashion-mnist")),
    "n_train": st.one_of(
        st.integers(max_value=0),
        st.integers(min_value=60_001),
        st.booleans(),
        st.floats(allow_nan=True),
        st.text(max_size=2),
    ),
    "n_test": st.one_of(
        st.integers(max_value=0), st.integers(min_value=10_001), st.booleans(), st.floats()
    ),
    "hidden": st.one_of(
        st.integers(),
        st.lists(st.integers(max_value=0), min_size=1, max_size=3).map(tuple),
        st.tuples(st.booleans()),
        st.tuples(st.floats()),
        st.text(max_size=3),
    ),
    "activation": st.text(max_size=8).filter(lambda s: s not in ACTIVATIONS),
    "init": st.text(max_size=8).filter(lambda s: s not in INITS),
    "batch_norm": st.text(max_size=8).filter(lambda s: s not in ("before", "after")),
    "dropout": st.one_of(
        st.floats(min_value=1.0), st.floats(max_value=-1e-9), non_finite, not_a_number
    ),
    "loss": st.text(max_size=8).filter(lambda s: s not in LOSSES),
    "label_smoothing": st.one_of(
        st.floats(min_value=1.0), st.floats(max_value=-1e-9), non_finite, not_a_number
    ),
    "optimizer": st.text(max_size=8).filter(lambda s: s not in OPTIMIZERS),
    "lr": st.one_of(st.floats(max_value=0.0), non_finite, not_a_number),
    "optimizer_kwargs": st.one_of(
        st.dictionaries(
            st.sampled_from(["momentum", "eps", "nesterov", "x"]), non_finite, min_size=1
        ),
        st.floats(),
        st.integers(),
    ),
    "weight_decay": st.one_of(st.floats(max_value=-1e-9), non_finite, not_a_number),
    "l1": st.one_of(st.floats(max_value=-1e-9), non_finite, not_a_number),
    "augment": st.text(max_size=8).filter(lambda s: s not in TRANSFORMS),
    "augment_kwargs": st.dictionaries(st.text(max_size=4), st.floats(), min_size=1),
    "holdout": st.one_of(
        st.integers(max_value=-1), st.integers(min_value=60_000), st.booleans(), st.floats()
    ),
    "evaluate_on": st.text(max_size=10).filter(lambda s: s not in ("test",)),
    "batch_size": st.one_of(st.integers(max_value=0), st.booleans(), st.floats(), st.text()),
    "epochs": st.one_of(st.integers(max_value=0), st.booleans(), st.floats(), st.text()),
}


def test_every_field_has_bad_values_to_try():
    assert set(BAD) == set(FIELDS)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(data=st.data())
def test_random_bad_values_are_refused_naming_the_field(data):
    name = data.draw(st.sampled_from(FIELDS))
    value = data.draw(BAD[name])
    with pytest.raises((ValueError, TypeError)) as info:
        Config(**{name: value})
    assert f"{name}=" in str(info.value) or f"{name}[" in str(info.value)


GOOD = st.fixed_dictionaries(
    {},
    optional={
        "dataset": st.sampled_from(["mnist", "fashion-mnist"]),
        "n_train": st.one_of(st.none(), st.integers(1, 50_000)),
        "n_test": st.one_of(st.none(), st.integers(1, 10_000)),
        "hidden": st.lists(st.integers(1, 512), max_size=4).map(tuple),
        "activation": st.sampled_from(sorted(ACTIVATIONS)),
        "init": st.sampled_from(sorted(INITS)),
        "batch_norm": st.sampled_from([None, "before", "after"]),
        "dropout": st.floats(0.0, 0.99),
        "loss": st.sampled_from(sorted(LOSSES)),
        "label_smoothing": st.floats(0.0, 0.99),
        "lr": st.floats(1e-6, 10.0),
        "weight_decay": st.floats(0.0, 1.0),
        "l1": st.floats(0.0, 1.0),
        "holdout": st.integers(0, 10_000),
        "batch_size": st.integers(1, 4096),
        "epochs": st.integers(1, 100),
    },
)


@settings(max_examples=150, deadline=None)
@given(fields=GOOD, optimizer=st.sampled_from(sorted(OPTIMIZERS)), momentum=st.floats(0, 0.99))
def test_random_good_values_make_a_config_that_keys_the_cache(fields, optimizer, momentum):
    from mla_course import cache

    if optimizer in ("momentum", "nesterov"):
        fields["optimizer_kwargs"] = {"momentum": momentum}
    config = Config(optimizer=optimizer, **fields)
    assert config.replace() == config and hash(config.replace()) == hash(config)
    assert len(cache.key({"config": config.to_dict()})) == 64  # plain, finite JSON data
    assert config.train_size <= SPLIT_SIZES["train"] - config.holdout


def test_config_checks_against_the_optimisers_rules_without_building_one(monkeypatch):
    """One rule for lr (> 0) in Config and the optimisers, and no throw-away optimiser."""
    from mla_course import optim

    def no_building(self, *args, **kwargs):
        raise AssertionError("Config built an optimiser to check its arguments")

    monkeypatch.setattr(torch.optim.Optimizer, "__init__", no_building)
    Config(optimizer="adam", lr=1e-3, optimizer_kwargs={"betas": (0.8, 0.99)})
    with pytest.raises(ValueError, match=r"betas\[1\]=1.0"):
        Config(optimizer="adam", optimizer_kwargs={"betas": (0.9, 1.0)})
    monkeypatch.undo()
    with pytest.raises(ValueError, match=r"lr=0\.0: expected a finite number > 0"):
        optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.0)
