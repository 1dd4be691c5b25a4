"""The from-scratch optimisers take the same steps as torch.optim's."""

import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mla_course import optim

SHAPES = [(3,), (4, 5), (2, 3, 2), ()]  # a bias, a weight matrix, a 3-D tensor, a scalar

# (ours, kwargs, torch's, kwargs): the pairs that must agree step for step.
PAIRS = [
    (optim.SGD, {"lr": 0.1}, torch.optim.SGD, {"lr": 0.1}),
    (optim.Momentum, {"lr": 0.05, "momentum": 0.9}, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    (
        optim.Nesterov,
        {"lr": 0.05, "momentum": 0.8},
        torch.optim.SGD,
        {"lr": 0.05, "momentum": 0.8, "nesterov": True},
    ),
    (optim.AdaGrad, {"lr": 0.1}, torch.optim.Adagrad, {"lr": 0.1}),
    (optim.AdaGrad, {"lr": 0.1, "eps": 1e-3}, torch.optim.Adagrad, {"lr": 0.1, "eps": 1e-3}),
    (optim.RMSProp, {"lr": 0.01}, torch.optim.RMSprop, {"lr": 0.01}),
    (
        optim.RMSProp,
        {"lr": 0.01, "alpha": 0.9, "eps": 1e-4},
        torch.optim.RMSprop,
        {"lr": 0.01, "alpha": 0.9, "eps": 1e-4},
    ),
    (optim.Adam, {"lr": 0.01}, torch.optim.Adam, {"lr": 0.01}),
    (
        optim.Adam,
        {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6},
        torch.optim.Adam,
        {"lr": 0.02, "betas": (0.8, 0.99), "eps": 1e-6},
    ),
]
IDS = [f"{ours.__name__}-{i}" for i, (ours, *_rest) in enumerate(PAIRS)]


def _params(seed, dtype):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=dtype).requires_grad_() for s in SHAPES]


def _loss(params, data):
    # A non-quadratic loss, so that the gradient changes along the way.
    return sum(
        (torch.tanh(p * x) ** 2 + 0.1 * p**4).sum() for p, x in zip(params, data, strict=True)
    )


def _run(cls, kwargs, params, steps, seed):
    opt = cls(params, **kwargs)
    g = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        data = [torch.randn(p.shape, generator=g, dtype=p.dtype) for p in params]  # a new "batch"
        opt.zero_grad()
        _loss(params, data).backward()
        opt.step()
    return [p.detach().clone() for p in params]


@pytest.mark.parametrize("weight_decay", [0.0, 0.05])
@pytest.mark.parametrize(("ours", "kw", "theirs", "tkw"), PAIRS, ids=IDS)
def test_same_steps_as_torch(ours, kw, theirs, tkw, weight_decay):
    for seed, dtype, tol in [(0, torch.float64, 1e-12), (1, torch.float32, 1e-5)]:
        a = _run(ours, {**kw, "weight_decay": weight_decay}, _params(seed, dtype), 25, seed)
        b = _run(theirs, {**tkw, "weight_decay": weight_decay}, _params(seed, dtype), 25, seed)
        start = _params(seed, dtype)
        for pa, pb, p0 in zip(a, b, start, strict=True):
            assert not torch.equal(pa, p0.detach())  # the parameters did move
            torch.testing.assert_close(pa, pb, rtol=tol, atol=tol)


def test_adam_without_bias_correction_takes_the_raw_moments():
    # One step from s = r = 0: s = (1 - b1) g, r = (1 - b2) g^2, so the step is
    # lr * (1 - b1) / sqrt(1 - b2) * sign(g) (up to eps) instead of lr * sign(g).
    g = torch.tensor([0.5, -2.0, 3.0], dtype=torch.float64)
    for bias_correction, factor in [(True, 1.0), (False, 0.1 / 0.001**0.5)]:
        p = torch.zeros(3, dtype=torch.float64, requires_grad=True)
        opt = optim.Adam([p], lr=0.01, eps=1e-12, bias_correction=bias_correction)
        p.grad = g.clone()
        opt.step()
        torch.testing.assert_close(p.detach(), -0.01 * factor * g.sign())


def test_adam_update_on_stacked_parameters():
    # The pure function is element-wise: stacking two runs gives the two runs.
    g = torch.Generator().manual_seed(0)
    p, grads = torch.randn(2, 4, 3, generator=g), torch.randn(5, 2, 4, 3, generator=g)
    s, r = torch.zeros_like(p), torch.zeros_like(p)
    singles = [(p[i].clone(), torch.zeros_like(p[i]), torch.zeros_like(p[i])) for i in range(2)]
    for t in range(1, 6):
        optim.adam_update(p, grads[t - 1], s, r, t, 0.01, 0.9, 0.999, 1e-8)
        for i, (pi, si, ri) in enumerate(singles):
            optim.adam_update(pi, grads[t - 1][i], si, ri, t, 0.01, 0.9, 0.999, 1e-8)
    for i, (pi, _, _) in enumerate(singles):
        torch.testing.assert_close(p[i], pi)


def test_closure_is_evaluated_with_gradients():
    w = torch.tensor([1.0, -1.0], requires_grad=True)
    opt = optim.Momentum([w], lr=0.1)

    def closure():
        opt.zero_grad()
        loss = (w**2).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == pytest.approx(2.0)
    torch.testing.assert_close(w.detach(), torch.tensor([0.8, -0.8]))


def test_param_groups_and_skipped_parameters():
    a = torch.ones(2, requires_grad=True)
    b = torch.ones(2, requires_grad=True)
    c = torch.ones(2, requires_grad=True)  # no gradient: must not move
    opt = optim.SGD([{"params": [a]}, {"params": [b, c], "lr": 0.5}], lr=0.1)
    (a.sum() + b.sum()).backward()
    opt.step()
    torch.testing.assert_close(a.detach(), torch.full((2,), 0.9))
    torch.testing.assert_close(b.detach(), torch.full((2,), 0.5))
    torch.testing.assert_close(c.detach(), torch.ones(2))


def test_state_is_created_on_first_use_and_saved():
    w = torch.ones(3, requires_grad=True)
    opt = optim.Adam([w], lr=0.1)
    assert len(opt.state) == 0
    w.sum().backward()
    opt.step()
    assert opt.state[w]["t"] == 1
    assert set(opt.state[w]) == {"t", "s", "r"}
    saved = opt.state_dict()
    opt2 = optim.Adam([torch.ones(3, requires_grad=True)], lr=0.1)
    opt2.load_state_dict(saved)
    assert next(iter(opt2.state.values()))["t"] == 1


@pytest.mark.parametrize(
    ("cls", "kwargs", "argument", "allowed"),
    [
        (optim.SGD, {"lr": -0.1}, "lr=-0.1", "> 0"),
        (optim.SGD, {"lr": 0.1, "weight_decay": -1.0}, "weight_decay=-1.0", ">= 0"),
        (optim.Momentum, {"lr": 0.1, "momentum": 1.0}, "momentum=1.0", "[0, 1)"),
        (optim.Nesterov, {"lr": 0.1, "momentum": -0.5}, "momentum=-0.5", "[0, 1)"),
        (optim.AdaGrad, {"lr": 0.1, "eps": 0.0}, "eps=0.0", "> 0"),
        (optim.RMSProp, {"lr": 0.1, "alpha": 1.5}, "alpha=1.5", "[0, 1)"),
        (optim.RMSProp, {"lr": 0.1, "eps": -1e-8}, "eps=-1e-08", "> 0"),
        (optim.Adam, {"lr": 0.1, "betas": (0.9, 1.0)}, "betas[1]=1.0", "[0, 1)"),
        (optim.Adam, {"lr": 0.1, "betas": (-0.1, 0.9)}, "betas[0]=-0.1", "[0, 1)"),
        (optim.Adam, {"lr": 0.1, "betas": 0.9}, "betas=0.9", "pair"),
        (optim.Adam, {"lr": float("nan")}, "lr=nan", "> 0"),
        (optim.SGD, {"lr": float("inf")}, "lr=inf", "a finite number > 0"),  # issue 14, item 7
        (optim.RMSProp, {"lr": 0.1, "eps": float("inf")}, "eps=inf", "a finite number > 0"),
        (optim.Adam, {"lr": 0.1, "bias_correction": 1}, "bias_correction=1", "True or False"),
    ],
)
def test_invalid_hyper_parameters_are_named(cls, kwargs, argument, allowed):
    with pytest.raises(ValueError) as info:
        cls([torch.zeros(2, requires_grad=True)], **kwargs)
    assert argument in str(info.value)
    assert allowed in str(info.value)


def test_invalid_value_in_a_param_group_is_caught():
    with pytest.raises(ValueError, match=r"momentum=2"):
        optim.Momentum([{"params": [torch.zeros(1, requires_grad=True)], "momentum": 2}], lr=0.1)


def test_repr_shows_the_hyper_parameters():
    opt = optim.Adam([torch.zeros(1, requires_grad=True)], lr=0.01)
    assert repr(opt) == (
        "Adam(lr=0.01, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.0, bias_correction=True)"
    )
    assert repr(optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)) == (
        "SGD(lr=0.1, weight_decay=0.0)"
    )


def test_registry_and_factory():
    assert set(optim.OPTIMIZERS) == {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam"}
    w = torch.zeros(2, requires_grad=True)
    opt = optim.make_optimizer("nesterov", [w], 0.1, momentum=0.5)
    assert isinstance(opt, optim.Nesterov)
    assert opt.param_groups[0]["momentum"] == 0.5
    with pytest.raises(ValueError, match=r"optimizer='adamw'.*'adagrad'.*'sgd'"):
        optim.make_optimizer("adamw", [w], 0.1)
    with pytest.raises(TypeError, match=r"optimizer='adam'.*momentum"):
        optim.make_optimizer("adam", [w], 0.1, momentum=0.9)


# ---------------------------------------------------------------------------
# Property tests: any bad hyper-parameter is refused at once, by name; any good
# one gives torch.optim's step.
# ---------------------------------------------------------------------------

_NAN, _INF = float("nan"), float("inf")
_NOT_NUMBERS = st.one_of(
    st.text(max_size=3),
    st.none(),
    st.booleans(),
    st.lists(st.floats(0, 1), max_size=2),
    st.complex_numbers(allow_nan=False, allow_infinity=False),
)
_NON_FINITE = st.sampled_from([_NAN, _INF, -_INF])
_NEGATIVE = st.floats(max_value=0.0, exclude_max=True, allow_nan=False, allow_infinity=False)
_BAD = {  # kind of hyper-parameter -> values outside what it allows
    "nonneg": st.one_of(_NOT_NUMBERS, _NON_FINITE, _NEGATIVE),
    "positive": st.one_of(_NOT_NUMBERS, _NON_FINITE, _NEGATIVE, st.just(0.0), st.just(0)),
    "unit": st.one_of(
        _NOT_NUMBERS, _NON_FINITE, _NEGATIVE, st.floats(min_value=1.0, allow_infinity=False)
    ),
    "bool": st.one_of(st.integers(), st.floats(), st.text(max_size=3), st.none()),
}
_GOOD = {
    "nonneg": st.floats(0.0, 10.0) | st.integers(0, 3),
    "positive": st.floats(1e-12, 1.0),
    "unit": st.floats(0.0, 0.999),
    "bool": st.booleans(),
}
# class -> {argument: kind}; lr is given by keyword like the others.
_ARGUMENTS = {
    optim.SGD: {"lr": "positive", "weight_decay": "nonneg"},
    optim.Momentum: {"lr": "positive", "momentum": "unit", "weight_decay": "nonneg"},
    optim.Nesterov: {"lr": "positive", "momentum": "unit", "weight_decay": "nonneg"},
    optim.AdaGrad: {"lr": "positive", "eps": "positive", "weight_decay": "nonneg"},
    optim.RMSProp: {"lr": "positive", "alpha": "unit", "eps": "positive", "weight_decay": "nonneg"},
    optim.Adam: {
        "lr": "positive",
        "betas[0]": "unit",
        "betas[1]": "unit",
        "eps": "positive",
        "weight_decay": "nonneg",
        "bias_correction": "bool",
    },
}
_TORCH = {
    optim.SGD: (torch.optim.SGD, {}),
    optim.Momentum: (torch.optim.SGD, {}),
    optim.Nesterov: (torch.optim.SGD, {"nesterov": True}),
    optim.AdaGrad: (torch.optim.Adagrad, {}),
    optim.RMSProp: (torch.optim.RMSprop, {}),
    optim.Adam: (torch.optim.Adam, {}),
}


def _as_kwargs(values: dict) -> dict:
    """``betas[0]`` and ``betas[1]`` folded into ``betas``."""
    kwargs = {k: v for k, v in values.items() if not k.startswith("betas")}
    if "betas[0]" in values:
        kwargs["betas"] = (values["betas[0]"], values["betas[1]"])
    return kwargs


@st.composite
def _one_bad_argument(draw):
    cls = draw(st.sampled_from(list(_ARGUMENTS)))
    kinds = _ARGUMENTS[cls]
    values = {name: draw(_GOOD[kind]) for name, kind in kinds.items()}
    name = draw(st.sampled_from(list(kinds)))
    values[name] = draw(_BAD[kinds[name]])
    return cls, name, values


@settings(max_examples=300, deadline=None)
@given(_one_bad_argument())
def test_any_bad_hyper_parameter_is_refused_by_name(case):
    cls, name, values = case
    with pytest.raises(ValueError) as info:
        cls([torch.zeros(2, requires_grad=True)], **_as_kwargs(values))
    message = str(info.value)
    assert message.startswith(f"{name}={values[name]!r}: expected "), message
    optimizer = {v: k for k, v in optim.OPTIMIZERS.items()}[cls]
    with pytest.raises(ValueError, match=re.escape(f"{name}=")):  # the engine's entry point too
        optim.hyper_parameters(optimizer, **_as_kwargs(values))


@st.composite
def _good_arguments(draw):
    cls = draw(st.sampled_from([c for c in _ARGUMENTS if c is not optim.Nesterov]))
    kinds = {k: v for k, v in _ARGUMENTS[cls].items() if k != "bias_correction"}
    return cls, {name: draw(_GOOD[kind]) for name, kind in kinds.items()}


@settings(max_examples=100, deadline=None)
@given(_good_arguments(), st.integers(0, 2**16))
def test_any_good_hyper_parameters_give_torch_steps(case, seed):
    cls, values = case
    kwargs = _as_kwargs(values)
    theirs, extra = _TORCH[cls]
    a = _run(cls, kwargs, _params(seed, torch.float64), 3, seed)
    b = _run(theirs, {**kwargs, **extra}, _params(seed, torch.float64), 3, seed)
    for pa, pb in zip(a, b, strict=True):
        assert torch.isfinite(pa).all()
        torch.testing.assert_close(pa, pb, rtol=1e-10, atol=1e-10)
