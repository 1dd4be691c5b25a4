"""The batched engine computes what the plain loop computes, network by network."""

import math

import pytest
import torch
import torch.nn.functional as F

from mla_course import data
from mla_course.engine import (
    Member,
    StackedMLP,
    StackedOptimizer,
    _hyper_parameters,
    train_many,
    unsupported,
)
from mla_course.experiments import Config, build, run, run_seeds, sweep
from mla_course.models import MLP
from mla_course.optim import make_optimizer
from mla_course.train import fit
from mla_course.utils import seed_everything

SIZES = [784, 24, 16, 10]


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """One thread: small products gain nothing from two, and a shared CPU makes two much slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def small():
    return data.load_tensors("mnist", "train", limit=1000), data.load_tensors(
        "mnist", "test", limit=300
    )


def _model(activation, seed, sizes=SIZES):
    seed_everything(seed)
    return MLP(sizes, activation)


def _plain(small, spec, epochs, batch_size):
    """The reference: one network trained by train.fit with the optimisers of mla_course.optim."""
    activation, optimizer, lr, kwargs, l1, seed = spec
    model = _model(activation, seed)
    opt = make_optimizer(optimizer, model.parameters(), lr, **kwargs)
    penalty = None
    if l1:

        def penalty(m):
            return l1 * sum(lin.weight.abs().sum() for lin in m.linears)

    return fit(
        model,
        opt,
        *small,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        penalty=penalty,
        on_divergence="stop",
        progress=False,
    )


def _batched(small, specs, epochs, batch_size, **kwargs):
    members = [Member(_model(a, s), o, lr, kw, l1, s) for a, o, lr, kw, l1, s in specs]
    return train_many(members, *small, epochs=epochs, batch_size=batch_size, **kwargs)


def _assert_same(h, ref, rtol=1e-5):
    assert h.diverged_at == ref.diverged_at
    assert len(h.step_loss) == len(ref.step_loss) and h.epochs == ref.epochs
    torch.testing.assert_close(
        torch.tensor(h.step_loss), torch.tensor(ref.step_loss), rtol=rtol, atol=0
    )
    for name in ("train_loss", "test_loss"):
        torch.testing.assert_close(
            torch.tensor(getattr(h, name)), torch.tensor(getattr(ref, name)), rtol=rtol, atol=0
        )
    for name in ("train_acc", "test_acc"):  # a float tie may flip one prediction, no more
        assert getattr(h, name) == pytest.approx(getattr(ref, name), abs=1.5e-3)


# Seeds, learning rates, six optimisers (with per-network hyper-parameters in a group),
# four activations (PReLU with its learnt slope), weight decay and an L1 penalty.
SPECS = [
    ("sigmoid", "sgd", 0.5, {}, 0.0, 0),
    ("sigmoid", "sgd", 0.1, {}, 0.0, 1),
    ("relu", "sgd", 0.05, {"weight_decay": 1e-3}, 0.0, 2),
    ("tanh", "momentum", 0.01, {"momentum": 0.9}, 0.0, 0),
    ("relu", "momentum", 0.02, {"momentum": 0.5}, 1e-4, 1),
    ("sigmoid", "nesterov", 0.05, {}, 0.0, 3),
    ("relu", "adagrad", 0.02, {}, 0.0, 4),
    ("prelu", "rmsprop", 1e-3, {}, 0.0, 5),
    ("sigmoid", "adam", 1e-3, {}, 0.0, 0),
    ("relu", "adam", 3e-3, {"weight_decay": 1e-4}, 0.0, 6),
    ("prelu", "adam", 2e-3, {"betas": (0.8, 0.99), "bias_correction": False}, 1e-4, 7),
]


def test_batched_equals_the_plain_loop(small):
    epochs, batch_size = 3, 16  # 63 steps per epoch (the last one partial): 189 steps
    histories = _batched(small, SPECS, epochs, batch_size)
    for spec, h in zip(SPECS, histories, strict=True):
        ref = _plain(small, spec, epochs, batch_size)
        assert ref.diverged_at is None and len(ref.step_loss) == 189
        _assert_same(h, ref)


@pytest.mark.parametrize(
    "optimizer,kwargs", [("sgd", {}), ("momentum", {"momentum": 0.9}), ("adam", {})]
)
def test_shared_hyper_parameters_use_the_pure_functions(small, optimizer, kwargs):
    """Seeds only: one group with uniform hyper-parameters, updated by mla_course.optim's functions."""
    lr = 1e-3 if optimizer == "adam" else 0.1
    specs = [("sigmoid", optimizer, lr, kwargs, 0.0, s) for s in (0, 1, 2)]
    histories = _batched(small, specs, 2, 32)
    for spec, h in zip(specs, histories, strict=True):
        _assert_same(h, _plain(small, spec, 2, 32))


def test_divergence_of_one_network_does_not_poison_the_others(small):
    specs = [
        ("relu", "sgd", 0.1, {}, 0.0, 0),
        ("relu", "sgd", 1e30, {}, 0.0, 1),
        ("sigmoid", "adam", 1e-3, {}, 0.0, 2),
        ("relu", "sgd", 0.05, {}, 0.0, 3),
    ]
    histories = _batched(small, specs, 2, 50)
    for spec, h in zip(specs, histories, strict=True):
        ref = _plain(small, spec, 2, 50)
        _assert_same(h, ref)
    assert histories[1].diverged_at is not None and histories[1].step_loss == []
    assert all(h.diverged_at is None and h.epochs == 2 for i, h in enumerate(histories) if i != 1)


def test_stacked_forward_and_unstack_round_trip():
    models = [_model(a, s) for a, s in [("sigmoid", 0), ("sigmoid", 1), ("prelu", 2), ("gelu", 3)]]
    with torch.no_grad():  # a slope of its own, to see that it is carried
        models[2].net[2].weight.fill_(0.1)
    stack = StackedMLP(models)
    x = torch.randn(5, 784)
    expected = torch.stack([m(x) for m in models])  # (M, 5, 10)
    torch.testing.assert_close(stack(x), expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(stack(x.expand(4, 5, 784)), expected, rtol=1e-5, atol=1e-6)
    for before, after in zip(models, stack.unstack(), strict=True):
        assert after.activation == before.activation
        for p, q in zip(before.parameters(), after.parameters(), strict=True):
            assert torch.equal(p, q)
    assert "M=4" in repr(stack)


@pytest.mark.parametrize(
    "optimizer,kwargs",
    [
        ("sgd", {"weight_decay": 0.01}),
        ("momentum", {"momentum": 0.8}),
        ("nesterov", {}),
        ("adagrad", {}),
        ("rmsprop", {"alpha": 0.9}),
        ("adam", {"betas": (0.8, 0.95), "weight_decay": 0.01}),
        ("adam", {"bias_correction": False}),
    ],
)
def test_tensor_form_of_each_update_equals_the_pure_function(optimizer, kwargs):
    """The per-network and the graph-mode (tensor step counter) updates equal mla_course.optim's."""
    torch.manual_seed(0)
    start = torch.randn(3, 4, 5)
    grads = [torch.randn(3, 4, 5) for _ in range(5)]
    hypers = [_hyper_parameters(optimizer, 0.01, kwargs)] * 3
    results = []
    for tensor_step, spread in [(False, False), (True, False), (False, True)]:
        p = start.clone()
        hs = [dict(h) for h in hypers]
        if spread:  # not uniform: forces the per-network form; network 0 keeps the same lr
            hs[1]["lr"], hs[2]["lr"] = 0.02, 0.03
        opt = StackedOptimizer([p], [(optimizer, 0, 3, hs)], tensor_step=tensor_step)
        for g in grads:
            opt.step([g])
        results.append(p)
    ref = start[0].clone().requires_grad_()
    torch_opt = make_optimizer(optimizer, [ref], 0.01, **kwargs)
    for g in grads:
        ref.grad = g[0].clone()
        torch_opt.step()
    for p in results:
        torch.testing.assert_close(p[0], ref.detach(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(results[0], results[1], rtol=1e-6, atol=1e-7)


def test_unsupported_models_and_bad_arguments_are_reported(small):
    assert (
        unsupported(MLP(SIZES, batch_norm="before"))
        == "batch_norm='before' (only None is supported)"
    )
    assert "dropout" in unsupported(MLP(SIZES, dropout=0.5))
    assert unsupported(MLP(SIZES)) is None
    with pytest.raises(ValueError, match=r"models\[1\].sizes=\[784, 8, 10\]"):
        StackedMLP([MLP(SIZES), MLP([784, 8, 10])])
    with pytest.raises(ValueError, match=r"models\[0\]: dropout=0.5"):
        train_many([Member(MLP(SIZES, dropout=0.5))], *small, epochs=1)
    with pytest.raises(ValueError, match="optimizer='lion'"):
        train_many([Member(MLP(SIZES), "lion")], *small, epochs=1)
    with pytest.raises(TypeError, match="momentum"):
        train_many([Member(MLP(SIZES), "adam", 1e-3, {"momentum": 0.9})], *small, epochs=1)
    with pytest.raises(ValueError, match="cuda_graph=True needs a CUDA device"):
        train_many([Member(MLP(SIZES))], *small, epochs=1, device="cpu", cuda_graph=True)
    with pytest.raises(ValueError, match="members is empty"):
        train_many([], *small, epochs=1)


def test_experiments_batched_and_plain_engines_agree(monkeypatch):
    monkeypatch.setenv("MLA_NO_CACHE", "1")
    base = Config(n_train=600, n_test=200, hidden=(16,), epochs=2, batch_size=50)
    configs = {
        "sgd": base.replace(lr=0.5),
        "adam": base.replace(optimizer="adam", lr=3e-3),
        "relu": base.replace(activation="relu", lr=0.1, l1=1e-4),
        "xavier": base.replace(activation="tanh", init="xavier_uniform", lr=0.1),
        "bn": base.replace(batch_norm="before"),  # not batchable: the plain loop runs it
    }
    fast = sweep(configs, seeds=[0, 1], engine="auto")
    slow = sweep(configs, seeds=[0, 1], engine="plain")
    for label in configs:
        for h, ref in zip(fast[label].histories, slow[label].histories, strict=True):
            _assert_same(h, ref)
    with pytest.raises(ValueError, match="engine='batched' cannot run batch_norm='before'"):
        run(configs["bn"], engine="batched")
    with pytest.raises(ValueError, match="engine='fast'"):
        run_seeds(base, engine="fast")
    # return_model=True trains with the plain loop, from build()'s initial weights
    history, trained = run(base, seed=3, return_model=True)
    _assert_same(run(base, seed=3, engine="batched"), history)
    assert not torch.equal(build(base, 3)[0].linears[0].weight, trained.linears[0].weight)


def test_time_is_amortised_and_losses_are_the_mean_over_the_batch(small):
    specs = [("sigmoid", "sgd", 0.1, {}, 0.0, s) for s in range(4)]
    h = _batched(small, specs, 1, 1000)  # one full-batch step each
    for spec, hist in zip(specs, h, strict=True):
        model = _model("sigmoid", spec[-1])
        X, y = small[0]
        perm = torch.randperm(len(X), generator=torch.Generator().manual_seed(spec[-1]))
        loss = F.cross_entropy(model(X[perm]), y[perm]).item()
        assert hist.step_loss[0] == pytest.approx(loss, rel=1e-6)
        assert hist.time[0] > 0 and math.isfinite(hist.time[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_graph_equals_eager_on_the_gpu(small):
    specs = SPECS[:6] + SPECS[8:]
    eager = _batched(small, specs, 2, 16, device="cuda", cuda_graph=False)
    graph = _batched(small, specs, 2, 16, device="cuda", cuda_graph=True)
    for h, ref in zip(graph, eager, strict=True):
        _assert_same(h, ref)


def test_cuda_graph_orchestration_with_a_stand_in_graph(small, monkeypatch):
    """The graph path's bookkeeping (warm-up then restore, static buffers, the eager partial
    batch, Adam's step counter on the device) gives the eager results. No GPU here: a stand-in
    "graph" replays the step by running it again on the same static buffers."""
    from contextlib import nullcontext

    from mla_course.engine import _Trainer

    specs = [s for s in SPECS if s[1] in ("sgd", "adam", "momentum")]
    members = [Member(_model(a, s), o, lr, kw, l1, s) for a, o, lr, kw, l1, s in specs]
    members.sort(key=lambda m: (m.optimizer, m.model.activation))
    cpu = torch.device("cpu")
    eager = _Trainer(members, *small, 16, cpu, cuda_graph=False)
    graphed = _Trainer(members, *small, 16, cpu, cuda_graph=True)
    assert graphed.opt.tensor_step and not eager.opt.tensor_step

    class Graph:
        def replay(self):
            graphed.static_loss.copy_(graphed.step(graphed.static_idx))

    class Stream:
        def wait_stream(self, other):
            pass

    monkeypatch.setattr(torch.cuda, "Stream", Stream)
    monkeypatch.setattr(torch.cuda, "current_stream", Stream)
    monkeypatch.setattr(torch.cuda, "stream", lambda s: nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", Graph)
    monkeypatch.setattr(torch.cuda, "graph", lambda g: nullcontext())
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    steps = math.ceil(len(small[0][0]) / 16)
    for _ in range(2):
        a, b = torch.empty(steps, len(members)), torch.empty(steps, len(members))
        eager.epoch(a)
        graphed.epoch(b)
        assert graphed.graph is not None
        torch.testing.assert_close(b, a, rtol=1e-5, atol=0)
    for p, q in zip(graphed.net.parameters(), eager.net.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)
