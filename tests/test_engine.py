"""The batched engine computes what the plain loop computes, network by network."""

import logging
import math
from contextlib import nullcontext

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from mla_course import data, engine, optim, settings
from mla_course.config import Config
from mla_course.engine import (
    Member,
    StackedMLP,
    StackedOptimizer,
    _Trainer,
    train_many,
    unsupported,
)
from mla_course.models import MLP
from mla_course.optim import make_optimizer
from mla_course.penalties import l1_penalty
from mla_course.runs import sweep
from mla_course.settings import seed_everything
from mla_course.train import fit

CPU = torch.device("cpu")
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
    """1000 training and 300 test images, on the CPU whatever the machine has."""
    return (
        data.load_tensors("mnist", "train", limit=1000, device="cpu"),
        data.load_tensors("mnist", "test", limit=300, device="cpu"),
    )


@pytest.fixture(autouse=True)
def _default_graph_setting(monkeypatch):
    """Each test starts from the default MLA_CUDA_GRAPH (a CUDA test sets ``require``)."""
    monkeypatch.delenv("MLA_CUDA_GRAPH", raising=False)


def _model(activation, seed, sizes=SIZES):
    seed_everything(seed)
    return MLP(sizes, activation)


def _plain(small, spec, epochs, batch_size):
    """The reference: one network trained by train.fit with the optimisers of mla_course.optim."""
    activation, optimizer, lr, kwargs, l1, seed = spec
    model = _model(activation, seed).to(small[0][0].device)
    opt = make_optimizer(optimizer, model.parameters(), lr, **kwargs)
    return fit(
        model,
        opt,
        *small,
        epochs=epochs,
        batch_size=batch_size,
        seed=seed,
        penalty=l1_penalty(alpha=l1) if l1 else None,
        on_divergence="stop",
        progress=False,
    )


def _members(specs):
    return [Member(_model(a, s), o, lr, kw, l1, s) for a, o, lr, kw, l1, s in specs]


def _batched(small, specs, epochs, batch_size, device="cpu", **kwargs):
    members = _members(specs)
    return train_many(
        members, *small, epochs=epochs, batch_size=batch_size, device=device, **kwargs
    )


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


@pytest.mark.parametrize("cpu_slice", [None, 20_000])
def test_batched_equals_the_plain_loop(small, cpu_slice, monkeypatch):
    """``cpu_slice=20_000``: the update runs on slices of one or a few networks (the
    first layer of one network holds 18,816 weights), as it does in large sweeps."""
    if cpu_slice is not None:
        monkeypatch.setattr(engine, "_CPU_SLICE", cpu_slice)
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
    stack = StackedMLP(models, CPU)
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
def test_stacked_updates_equal_torch_optim_for_shared_and_per_network_values(optimizer, kwargs):
    """Three stacked networks, each checked against its own torch optimiser: every
    hyper-parameter shared (numbers), the learning rate per network (a (3, 1, 1) tensor),
    and the step number as a device tensor (the graph path)."""
    torch.manual_seed(0)
    start = torch.randn(3, 4, 5)
    grads = [torch.randn(3, 4, 5) for _ in range(5)]
    for tensor_step, lrs in [(False, [0.01] * 3), (True, [0.01] * 3), (False, [0.01, 0.02, 0.03])]:
        p = start.clone()
        hypers = [optim.hyper_parameters(optimizer, lr, **kwargs) for lr in lrs]
        opt = StackedOptimizer([p], [(optimizer, 0, 3, hypers)], tensor_step=tensor_step)
        assert isinstance(opt.groups[0].hypers["lr"], float) == (len(set(lrs)) == 1)
        for g in grads:
            opt.step([g])
        assert opt.t == 5 and opt.t_tensor.item() == 5 and "step=5" in repr(opt)
        for i, lr in enumerate(lrs):
            ref = start[i].clone().requires_grad_()
            torch_opt = make_optimizer(optimizer, [ref], lr, **kwargs)
            for g in grads:
                ref.grad = g[i].clone()
                torch_opt.step()
            torch.testing.assert_close(p[i], ref.detach(), rtol=1e-6, atol=1e-7)


def test_every_hyper_parameter_may_differ_per_network():
    """Adam with lr, betas, eps and weight decay all different: (3, 1, 1) tensors everywhere."""
    torch.manual_seed(1)
    start, grads = torch.randn(3, 4, 5), [torch.randn(3, 4, 5) for _ in range(8)]
    kwargs = [
        {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0},
        {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.01},
        {"betas": (0.5, 0.9), "eps": 1e-4, "weight_decay": 0.1},
    ]
    lrs = [1e-3, 1e-2, 3e-2]
    p = start.clone()
    hypers = [optim.hyper_parameters("adam", lr, **kw) for lr, kw in zip(lrs, kwargs, strict=True)]
    opt = StackedOptimizer([p], [("adam", 0, 3, hypers)])
    assert all(isinstance(v, torch.Tensor) for v in opt.groups[0].hypers.values() if v is not True)
    for g in grads:
        opt.step([g])
    for i in range(3):
        ref = start[i].clone().requires_grad_()
        torch_opt = torch.optim.Adam([ref], lr=lrs[i], **kwargs[i])
        for g in grads:
            ref.grad = g[i].clone()
            torch_opt.step()
        torch.testing.assert_close(p[i], ref.detach(), rtol=1e-5, atol=1e-6)


def test_a_boolean_choice_splits_the_group(small):
    """Adam with and without bias correction: two groups, each calling adam_update."""
    specs = [
        ("sigmoid", "adam", 1e-3, {}, 0.0, 0),
        ("sigmoid", "adam", 1e-3, {"bias_correction": False}, 0.0, 1),
        ("sigmoid", "adam", 2e-3, {}, 0.0, 2),
    ]
    _, _, order = _batched(small, specs, 1, 500, return_stack=True)
    assert order == [1, 0, 2]  # bias_correction=False sorts first: its own group
    for i, h in enumerate(_batched(small, specs, 1, 500)):
        _assert_same(h, _plain(small, specs[i], 1, 500))


def test_patching_an_update_rule_changes_the_batched_run(small, monkeypatch):
    """The engine calls mla_course.optim's functions, looked up at each step: patching
    adam_update to halve its step gives the run of an unpatched Adam with lr / 2."""
    specs = [("sigmoid", "adam", 2e-3, {}, 0.0, s) for s in (0, 1)]
    specs += [("relu", "adam", 4e-3, {}, 0.0, 2)]  # per-network lr: the tensor form too
    halved = [(a, o, lr / 2, kw, l1, s) for a, o, lr, kw, l1, s in specs]
    reference = _batched(small, halved, 1, 100)
    original = optim.adam_update
    calls = []

    def half_step(p, g, s, r, t, lr, *args, **kwargs):
        calls.append(t)
        original(p, g, s, r, t, lr / 2, *args, **kwargs)

    monkeypatch.setattr(optim, "adam_update", half_step)
    patched = _batched(small, specs, 1, 100)
    assert len(calls) == 10 * 6  # 10 steps, 3 weights and 3 biases, one group
    for h, ref in zip(patched, reference, strict=True):
        _assert_same(h, ref)
    monkeypatch.undo()
    unpatched = _batched(small, specs, 1, 100)
    for h, ref in zip(unpatched, patched, strict=True):
        assert h.step_loss[0] == ref.step_loss[0] and h.step_loss[1:] != ref.step_loss[1:]


def test_unsupported_configs_and_bad_arguments_are_reported(small):
    base = Config(n_train=600, n_test=200, hidden=(16,))
    assert unsupported(base) is None
    assert unsupported(base.replace(l1=1e-4, weight_decay=1e-3, optimizer="adam")) is None
    cases = {
        "batch_norm": "before",
        "dropout": 0.5,
        "loss": "mse",
        "label_smoothing": 0.1,
        "augment": "noise",
    }
    for name, value in cases.items():
        assert unsupported(base.replace(**{name: value})).startswith(f"{name}={value!r}")
    assert unsupported(MLP(SIZES, batch_norm="before")) == (
        "batch_norm='before' (only None is supported)"
    )
    assert unsupported(MLP(SIZES)) is None
    assert "optimizer='lion'" in unsupported(Member(MLP(SIZES), "lion"))
    with pytest.raises(ValueError, match=r"models\[1\].sizes=\[784, 8, 10\]"):
        StackedMLP([MLP(SIZES), MLP([784, 8, 10])], CPU)
    with pytest.raises(ValueError, match=r"models\[0\]: dropout=0.5"):
        train_many([Member(MLP(SIZES, dropout=0.5))], *small, epochs=1, device="cpu")
    with pytest.raises(ValueError, match="optimizer='lion'"):
        train_many([Member(MLP(SIZES), "lion")], *small, epochs=1, device="cpu")
    with pytest.raises(TypeError, match="momentum"):
        member = Member(MLP(SIZES), "adam", 1e-3, {"momentum": 0.9})
        train_many([member], *small, epochs=1, device="cpu")
    for bad in (float("nan"), float("inf"), -1.0):
        with pytest.raises(ValueError, match=r"lr=.*finite number > 0"):
            train_many([Member(MLP(SIZES), "sgd", bad)], *small, epochs=1, device="cpu")
        with pytest.raises(ValueError, match=r"l1=.*finite number >= 0"):
            train_many([Member(MLP(SIZES), l1=bad)], *small, epochs=1, device="cpu")
    with pytest.raises(ValueError, match="cuda_graph=True needs a CUDA device"):
        train_many([Member(MLP(SIZES))], *small, epochs=1, device="cpu", cuda_graph=True)
    with pytest.raises(ValueError, match="members is empty"):
        train_many([], *small, epochs=1, device="cpu")


def test_the_runs_module_gives_the_same_numbers_through_either_engine(monkeypatch):
    monkeypatch.setenv("MLA_NO_CACHE", "1")
    base = Config(n_train=600, n_test=200, hidden=(16,), epochs=2, batch_size=50)
    configs = {
        "sgd": base.replace(lr=0.5),
        "adam": base.replace(optimizer="adam", lr=3e-3),
        "relu": base.replace(activation="relu", lr=0.1, l1=1e-4),
        "xavier": base.replace(activation="tanh", init="xavier_uniform", lr=0.1),
    }
    fast = sweep(configs, seeds=[0, 1], engine="batched", device="cpu")
    slow = sweep(configs, seeds=[0, 1], engine="plain", device="cpu")
    for label in configs:
        for h, ref in zip(fast[label].histories, slow[label].histories, strict=True):
            _assert_same(h, ref)


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


# ---------------------------------------------------------------------------
# The CUDA-graph path, checked on the CPU: what a graph would freeze, and the
# bookkeeping around the capture.
# ---------------------------------------------------------------------------

GRAPH_SPECS = [s for s in SPECS if s[1] in ("sgd", "adam", "momentum", "rmsprop")]


def _trainer(small, specs, *, graph: bool, batch_size=16):
    members = sorted(_members(specs), key=lambda m: (m.optimizer, m.model.activation))
    hypers = [engine._hypers(m) for m in members]
    order = sorted(range(len(members)), key=lambda i: engine._group_key(members[i], hypers[i]))
    members = [members[i] for i in order]
    return _Trainer(members, *small, batch_size, CPU, cuda_graph=graph)


class _ScalarLog(TorchDispatchMode):
    """Every aten op run, with its non-tensor arguments: what a CUDA graph bakes in."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        leaves = tree_leaves((args, kwargs))
        scalars = [x for x in leaves if isinstance(x, int | float | bool)]
        self.ops.append((str(func), scalars))
        return func(*args, **kwargs)


def _logged_steps(trainer, idx, steps=(1, 2)) -> list[list]:
    """The op logs of two steps of ``trainer`` (after ``steps[0] - 1`` unlogged ones)."""
    logs = []
    for k in range(1, max(steps) + 1):
        if k in steps:
            with _ScalarLog() as log:
                trainer.step(idx)
            logs.append(log.ops)
        else:
            trainer.step(idx)
    return logs


def test_the_graph_step_bakes_in_no_value_that_changes_from_step_to_step(small):
    """A CUDA graph replays each kernel with the scalar arguments it was captured with.
    So the graph path's step must pass every changing value (Adam's step number, its
    bias correction) in tensors: two steps must run the same ops with the same scalars.
    The eager path, which passes t as a Python int, is seen to fail the same check."""
    graphed = _trainer(small, GRAPH_SPECS, graph=True)
    g = torch.Generator().manual_seed(0)
    idx = torch.stack([torch.randperm(1000, generator=g)[:16] for _ in graphed.seeds])
    first, later = _logged_steps(graphed, idx, steps=(1, 5))
    assert len(first) > 50 and [op for op, _ in first] == [op for op, _ in later]
    changed = [(op, a, b) for (op, a), (_, b) in zip(first, later, strict=True) if a != b]
    assert changed == []
    eager = _trainer(small, GRAPH_SPECS, graph=False)
    first, later = _logged_steps(eager, idx, steps=(1, 5))
    assert any(a != b for (_, a), (_, b) in zip(first, later, strict=True))


class _ReplayedGraph:
    """A stand-in for ``torch.cuda.CUDAGraph`` on the CPU with a graph's semantics: the
    capture records the aten ops; a replay reruns those ops alone, with the arguments
    they were captured with (scalars frozen, Python not rerun), each writing its result
    into the memory of the captured output, as a graph's kernels do."""

    def __init__(self):
        self.log = _Recorder()

    def replay(self):
        with torch.no_grad():
            for func, args, kwargs, out in self.log.ops:
                fresh = func(*args, **kwargs)
                for old, new in zip(tree_leaves(out), tree_leaves(fresh), strict=True):
                    if isinstance(old, torch.Tensor) and not _same_memory(old, new):
                        old.copy_(new)


def _same_memory(a, b) -> bool:
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


class _Recorder(TorchDispatchMode):
    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        assert func is not torch.ops.aten._local_scalar_dense.default, "a host sync in the step"
        out = func(*args, **kwargs)
        self.ops.append((func, args, kwargs, out))
        return out


class _Stream:
    def __init__(self, name="side stream"):
        self.name = name

    def wait_stream(self, other):
        pass

    def __repr__(self):
        return self.name


_DEFAULT_STREAM = _Stream("default stream")


def _fake_cuda(monkeypatch, graph_context):
    """torch.cuda's stream and graph calls, as stand-ins that work on the CPU."""
    streams = []
    monkeypatch.setattr(torch.cuda, "Stream", lambda device=None: _Stream())
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: _DEFAULT_STREAM)
    monkeypatch.setattr(torch.cuda, "stream", lambda s: nullcontext())
    monkeypatch.setattr(torch.cuda, "set_stream", streams.append)
    monkeypatch.setattr(torch.cuda, "device", lambda d: nullcontext())
    monkeypatch.setattr(torch.cuda, "CUDAGraph", _ReplayedGraph)
    monkeypatch.setattr(torch.cuda, "graph", graph_context)
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: None)
    return streams


def test_graph_path_replays_give_the_eager_results(small, monkeypatch):
    """The graph path (warm-up then restore, capture on the side stream, static buffers,
    replays, the eager last partial batch, the step counter) gives the eager results,
    with each full batch a replay of the captured ops: a value frozen at capture time
    would show here as a different loss."""
    _fake_cuda(monkeypatch, lambda g, stream=None: g.log)
    eager = _trainer(small, GRAPH_SPECS, graph=False)
    graphed = _trainer(small, GRAPH_SPECS, graph=True)
    steps, M = math.ceil(1000 / 16), len(GRAPH_SPECS)
    for epoch in range(2):
        a, b = torch.empty(steps, M), torch.empty(steps, M)
        eager.epoch(a)
        graphed.epoch(b)
        torch.testing.assert_close(b, a, rtol=1e-5, atol=0)
        assert graphed.opt.t == eager.opt.t == (epoch + 1) * steps
        assert graphed.opt.t_tensor.item() == graphed.opt.t
    assert repr(graphed.opt) == repr(eager.opt)
    assert (graphed.counts.captures, graphed.counts.replays) == (1, 2 * (steps - 1))
    for p, q in zip(graphed.net.parameters(), eager.net.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-6)


def test_the_replayed_graph_catches_a_frozen_step_number(small, monkeypatch):
    """The same check fails when the graph path is given t as a Python number."""
    _fake_cuda(monkeypatch, lambda g, stream=None: g.log)
    specs = [("sigmoid", "adam", 1e-2, {}, 0.0, 0)]
    eager = _trainer(small, specs, graph=False, batch_size=100)
    frozen = _trainer(small, specs, graph=True, batch_size=100)
    frozen.opt.tensor_step = False  # the mistake: t passed as an int, baked in at capture
    a, b = torch.empty(10, 1), torch.empty(10, 1)
    eager.epoch(a)
    frozen.epoch(b)
    assert not torch.allclose(a, b, rtol=1e-5, atol=0)


def test_a_failed_capture_restores_the_stream_and_goes_on_eagerly(small, monkeypatch, caplog):
    class FailingCapture:
        def __enter__(self):
            pass

        def __exit__(self, *exc):
            raise RuntimeError("capture_end failed")

    streams = _fake_cuda(monkeypatch, lambda g, stream=None: FailingCapture())
    eager = _trainer(small, GRAPH_SPECS[:3], graph=False)
    graphed = _trainer(small, GRAPH_SPECS[:3], graph=True)
    steps = math.ceil(1000 / 16)
    a, b = torch.empty(steps, 3), torch.empty(steps, 3)
    with caplog.at_level(logging.WARNING, logger="mla_course.engine"):
        eager.epoch(a)
        graphed.epoch(b)
    assert streams == [_DEFAULT_STREAM]  # set back after the failure
    assert graphed.graph is None and graphed.counts.path == "eager-fallback"
    assert "capture failed" in caplog.text
    torch.testing.assert_close(b, a, rtol=1e-5, atol=0)
    required = _trainer(small, GRAPH_SPECS[:3], graph=True)
    required.require = True
    with pytest.raises(RuntimeError, match="MLA_CUDA_GRAPH=require"):
        required.epoch(torch.empty(steps, 3))


def test_the_graph_setting_is_checked_and_the_path_is_logged(small, monkeypatch, caplog):
    for value, mode in [("", "auto"), ("1", "auto"), ("off", "off"), ("0", "off")]:
        monkeypatch.setenv("MLA_CUDA_GRAPH", value)
        assert settings.cuda_graph_mode() == mode
    monkeypatch.setenv("MLA_CUDA_GRAPH", "always")
    with pytest.raises(ValueError, match=r"MLA_CUDA_GRAPH='always'.*off.*require"):
        _batched(small, SPECS[:1], 1, 500)
    monkeypatch.setenv("MLA_CUDA_GRAPH", "require")
    with pytest.raises(ValueError, match=r"MLA_CUDA_GRAPH=require: device='cpu'"):
        _batched(small, SPECS[:1], 1, 500)
    monkeypatch.delenv("MLA_CUDA_GRAPH")
    before = engine.COUNTS.replays
    with caplog.at_level(logging.INFO, logger="mla_course.engine"):
        _batched(small, SPECS[:2], 1, 500)
    assert "2 networks on cpu, eager path" in caplog.text
    assert engine.last_run.path == "eager" and engine.last_run.networks == 2
    assert engine.COUNTS.replays == before


def test_progress_bar_on_request_and_silent_otherwise(small, monkeypatch, capsys):
    _batched(small, SPECS[:1], 1, 500, progress=True)
    assert "1 network" in capsys.readouterr().err
    _batched(small, SPECS[:1], 1, 500)  # not a terminal: silent
    monkeypatch.setenv("MLA_PROGRESS", "0")
    _batched(small, SPECS[:1], 1, 500)
    assert capsys.readouterr().err == ""
    monkeypatch.setenv("MLA_PROGRESS", "maybe")
    with pytest.raises(ValueError, match="MLA_PROGRESS='maybe'"):
        _batched(small, SPECS[:1], 1, 500)


# ---------------------------------------------------------------------------
# On a GPU: the graph is required, not hoped for.
# ---------------------------------------------------------------------------

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@needs_cuda
def test_cuda_graph_equals_eager_and_the_plain_loop_on_the_gpu(small, monkeypatch):
    monkeypatch.setenv("MLA_CUDA_GRAPH", "require")
    specs = SPECS[:6] + SPECS[8:]
    before = engine.COUNTS.captures
    graph = _batched(small, specs, 2, 16, device="cuda")
    assert engine.last_run.path == "cuda-graph" and engine.COUNTS.captures == before + 1
    assert engine.last_run.counts.replays == 2 * (math.ceil(1000 / 16) - 1)
    eager = _batched(small, specs, 2, 16, device="cuda", cuda_graph=False)
    assert engine.last_run.path == "eager"
    cuda_small = tuple(tuple(t.cuda() for t in split) for split in small)
    for spec, h, ref in zip(specs, graph, eager, strict=True):
        _assert_same(h, ref)
        _assert_same(h, _plain(cuda_small, spec, 2, 16), rtol=1e-4)


@needs_cuda
def test_capture_on_another_device_than_the_current_one(small, monkeypatch):
    if torch.cuda.device_count() < 2:
        pytest.skip("needs two CUDA GPUs")
    monkeypatch.setenv("MLA_CUDA_GRAPH", "require")
    graph = _batched(small, SPECS[:3], 1, 16, device="cuda:1")
    eager = _batched(small, SPECS[:3], 1, 16, device="cuda:1", cuda_graph=False)
    for h, ref in zip(graph, eager, strict=True):
        _assert_same(h, ref)


def test_a_network_takes_the_same_steps_alone_or_beside_others(small):
    """Probe finding 3: Adam's betas or RMSProp's alpha differing in a sweep give each network
    the steps it takes alone (a number in ``1 - beta`` is never stacked in float32)."""
    specs = [
        ("sigmoid", "adam", 1e-3, {"betas": (0.9, 0.999)}, 0.0, 0),
        ("sigmoid", "adam", 1e-3, {"betas": (0.8, 0.99)}, 0.0, 0),
        ("sigmoid", "rmsprop", 1e-3, {"alpha": 0.9}, 0.0, 1),
        ("sigmoid", "rmsprop", 2e-3, {"alpha": 0.99}, 0.0, 1),
    ]
    together = _batched(small, specs, 1, 100)
    for spec, h in zip(specs, together, strict=True):
        (alone,) = _batched(small, [spec], 1, 100)
        assert h.step_loss == alone.step_loss and h.test_loss == alone.test_loss
