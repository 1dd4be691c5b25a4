"""How fast is the fast path? ``python -m mla_course.bench [PATH]``.

Times the book's way of training (data resident on the device, many networks
at once in :mod:`mla_course.engine`) against the way of the PyTorch tutorial
"Optimizing model parameters": a torchvision ``Dataset`` behind a
``DataLoader`` (batches of 64, shuffled), ``.to(device)`` at every step,
``torch.optim.SGD``, and a ``.item()`` per batch when evaluating. Both sides do
the same work: train, then evaluate on the whole train and test splits after
each epoch. Three workloads:

* **Question 1**: one 784-120-80-10 sigmoid network, 2 epochs of MNIST;
* **sweeps of 32 and 256 networks** (activations, optimisers, learning rates
  and seeds mixed), whose cost is reported *per network*. The baseline trains
  networks one after the other, so its cost per network is that of one network
  of the sweep (sigmoid, SGD), measured once, its training and evaluation loop
  alone (the data sets would be made once for the whole sweep). On a CPU the
  sweeps are shrunk to a subset of MNIST (100 and 20 steps per network, with as
  many evaluated examples per step as Question 1); on a GPU they run the
  Question 1 workload in full.

Each measurement runs in a fresh Python process, so that its peak memory
(resident set size, and CUDA memory on a GPU) is its own and no warm cache
helps the next one. The results go to a JSON file (default
``docs/_static/bench/latest.json``, which the Performance page of the book
shows) and a short table is printed. Ratios are measured in the same run, on
the same machine: the machine is recorded with them, and so are the float32
precision of matrix products (full IEEE, or TF32) and the path the engine
took (``cuda-graph`` with its captures, replays and fallbacks, or ``eager``;
see :mod:`mla_course.engine`).

Options: ``--threads N`` sets ``torch.set_num_threads`` in every process (a
CPU shared with other jobs can be much faster with 1); ``--device``; ``--full``
runs the full sweeps on a CPU too (long). ``MLA_QUICK=1`` shrinks every
workload to seconds (a smoke test, not a measurement).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

__all__ = [
    "PEERS",
    "TARGETS",
    "flops_per_step",
    "format_table",
    "gemm_peak",
    "main",
    "measure",
    "measure_peers",
    "rst_table",
    "workloads",
]

DEFAULT_PATH = Path("docs/_static/bench/latest.json")

# Speed-ups asked of the fast path (issue "Fast training engine and benchmark").
TARGETS = {
    "cpu": {"question1": 2.5, "sweep32": 5.0},
    "cuda": {"question1": 30.0, "sweep256": 300.0},
}


def workloads(device_type: str, *, full: bool = False, quick: bool = False) -> dict:
    """The runs of each benchmark row: ``n_train``, ``n_test``, ``epochs`` and number of models."""
    q1 = {"n_train": None, "n_test": None, "epochs": 2}
    if quick:
        q1 = {"n_train": 1280, "n_test": 500, "epochs": 1}
        small = {"n_train": 640, "n_test": 200, "epochs": 1}
        return {
            "question1": {**q1, "models": 1},
            "sweep32": {**small, "models": 32},
            "sweep256": {**small, "models": 256},
        }
    if full or device_type == "cuda":
        return {
            "question1": {**q1, "models": 1},
            "sweep32": {**q1, "models": 32},
            "sweep256": {**q1, "models": 256},
        }
    return {
        "question1": {**q1, "models": 1},
        "sweep32": {"n_train": 6400, "n_test": 1000, "epochs": 1, "models": 32},  # 100 steps
        "sweep256": {"n_train": 1280, "n_test": 200, "epochs": 1, "models": 256},  # 20 steps
    }


def _sweep_configs(models: int, n_train, n_test, epochs):
    """``models`` configurations: activations x optimisers (with their learning rates) x seeds."""
    from .config import Config

    base = Config(n_train=n_train, n_test=n_test, epochs=epochs)
    optimisers = [
        ("sgd", 0.1, {}),
        ("sgd", 0.5, {}),
        ("momentum", 0.05, {"momentum": 0.9}),
        ("adam", 1e-3, {}),
    ]
    if models >= 256:
        optimisers += [
            ("sgd", 0.02, {}),
            ("nesterov", 0.05, {"momentum": 0.9}),
            ("rmsprop", 1e-3, {}),
            ("adam", 3e-3, {}),
        ]
    activations = ["sigmoid", "relu"] if models < 256 else ["sigmoid", "relu", "tanh", "gelu"]
    configs = {
        f"{a} {o} {lr}": base.replace(activation=a, optimizer=o, lr=lr, optimizer_kwargs=kw)
        for a in activations
        for o, lr, kw in optimisers
    }
    seeds = models // len(configs)
    if seeds * len(configs) != models:
        raise ValueError(f"models={models}: expected a multiple of {len(configs)}")
    return configs, list(range(seeds))


# ---------------------------------------------------------------------------
# The measurements, each run in its own process by main().
# ---------------------------------------------------------------------------


def _tutorial(n_train, n_test, epochs, device, lr=0.1, seed=0) -> tuple[int, float]:
    """The PyTorch tutorial's loop: Dataset + DataLoader, .to(device) per batch.

    Returns the number of steps and the seconds spent in the loop (after the data
    sets, loaders and model are made: a sweep done this way would make them once).
    """
    import torch
    from torch import nn

    from .data import make_loader

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    train_loader = make_loader("mnist", "train", batch_size=64, limit=n_train, generator=g)
    eval_loaders = [
        make_loader("mnist", "train", batch_size=64, shuffle=False, limit=n_train),
        make_loader("mnist", "test", batch_size=64, limit=n_test),
    ]
    model = nn.Sequential(
        nn.Flatten(),
        nn.Linear(784, 120),
        nn.Sigmoid(),
        nn.Linear(120, 80),
        nn.Sigmoid(),
        nn.Linear(80, 10),
    ).to(device)
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    steps = 0
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        for X, y in train_loader:
            X, y = X.to(device), y.to(device)
            loss = loss_fn(model(X), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            steps += 1
        model.eval()
        for loader in eval_loaders:
            test_loss, correct = 0.0, 0.0
            with torch.no_grad():
                for X, y in loader:
                    X, y = X.to(device), y.to(device)
                    pred = model(X)
                    test_loss += loss_fn(pred, y).item()
                    correct += (pred.argmax(1) == y).type(torch.float).sum().item()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return steps, time.perf_counter() - start


def measure(phase: str, work: dict, device: str | None = None) -> dict:
    """Run one measurement in this process: ``phase`` is ``baseline`` or ``fast``.

    Returns the wall time in seconds from loading the data to the last evaluation
    (``seconds``), for the baseline also the time of its training and evaluation
    loop alone (``loop_seconds``), the number of training steps per network
    (``steps``) and the peak memory of this process.
    """
    import math
    import resource

    import torch

    from . import engine
    from .config import Config
    from .runs import load_data, sweep, train_network
    from .settings import get_device

    device = get_device(device)
    n_train, n_test, epochs, models = (work[k] for k in ("n_train", "n_test", "epochs", "models"))
    if device.type == "cuda":  # the CUDA context is made before the clock starts, on both sides
        torch.zeros(1, device=device).sum().item()
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    loop = None
    if phase == "baseline":  # one network; its cost is the cost per network of a sweep
        steps, loop = _tutorial(n_train, n_test, epochs, device)
    elif phase == "fast" and models == 1:
        config = Config(n_train=n_train, n_test=n_test, epochs=epochs)
        history, _ = train_network(config, seed=0, device=device)
        steps = len(history.step_loss)
    elif phase == "fast":
        configs, seeds = _sweep_configs(models, n_train, n_test, epochs)
        load_data(next(iter(configs.values())), device)
        sweep(configs, seeds, device=device)
        steps = math.ceil((n_train or 60000) / 64) * epochs
    else:
        raise ValueError(f"phase={phase!r}: expected 'baseline' or 'fast'")
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    out = {
        "seconds": seconds,
        "loop_seconds": loop,
        "steps": steps,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if phase == "fast":  # which path the engine took: CUDA graph, eager or fallback
        counts = engine.COUNTS
        out["engine"] = {
            "path": counts.path,
            "captures": counts.captures,
            "replays": counts.replays,
            "fallbacks": counts.fallbacks,
        }
    if device.type == "cuda":
        out["peak_cuda_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
    return out


def _in_subprocess(phase: str, work: dict, args) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.json"
        cmd = [
            sys.executable,
            "-m",
            "mla_course.bench",
            "--_phase",
            phase,
            "--_work",
            json.dumps(work),
            "--_out",
            str(out),
        ]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        if args.device:
            cmd += ["--device", args.device]
        env = {**os.environ, "MLA_NO_CACHE": "1"}  # measure training, not the results cache
        subprocess.run(cmd, check=True, env=env)
        return json.loads(out.read_text())


def _machine(device_type: str, threads: int) -> dict:
    import torch

    info = {
        "platform": platform.platform(),
        "processor": _cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch_threads": threads,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": device_type,
        "float32_matmul_precision": _matmul_precision(),
    }
    if device_type == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    with contextlib.suppress(OSError):  # the load shows how busy the machine was with others' jobs
        info["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return info


def _matmul_precision() -> str:
    """``"ieee"`` (full float32 products) or ``"tf32"``, as in force once a device is chosen."""
    from . import settings

    settings.get_device("cpu")  # choosing a device pins the precision
    return settings.float32_matmul_precision()


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
        commit = out.stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--", "."],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).parent,
        )
        return commit + ("+uncommitted package changes" if changed.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return None


def _row(name: str, work: dict, base: dict, fast: dict, target: float | None) -> dict:
    models = work["models"]
    # One network: both whole runs, data loading included. A sweep: the tutorial's way would
    # load the data once and then train network after network, so its cost per network is
    # the loop alone (which favours it); the fast side is the whole sweep divided by M.
    base_per_model = base["seconds"] if models == 1 else base["loop_seconds"]
    fast_per_model = fast["seconds"] / models
    speedup = base_per_model / fast_per_model
    return {
        "name": name,
        "models": models,
        "workload": {k: work[k] for k in ("n_train", "n_test", "epochs")},
        "steps_per_model": fast["steps"],
        "baseline_s_per_model": base_per_model,
        "fast_s_per_model": fast_per_model,
        "fast_s_total": fast["seconds"],
        "baseline_ms_per_model_step": 1e3 * base_per_model / base["steps"],
        "fast_ms_per_model_step": 1e3 * fast_per_model / fast["steps"],
        "speedup": speedup,
        "target": target,
        "meets_target": None if target is None else speedup >= target,
        "fast_path": fast.get("engine", {}).get("path"),
        "graph_counts": {k: v for k, v in fast.get("engine", {}).items() if k != "path"},
        "baseline_peak_rss_mib": base["peak_rss_mib"],
        "fast_peak_rss_mib": fast["peak_rss_mib"],
        **(
            {
                "baseline_peak_cuda_mib": base["peak_cuda_mib"],
                "fast_peak_cuda_mib": fast["peak_cuda_mib"],
            }
            if "peak_cuda_mib" in fast
            else {}
        ),
    }


_LABELS = {
    "question1": "Question 1",
    "sweep32": "sweep, 32 models",
    "sweep256": "sweep, 256 models",
}


def _table_rows(results: dict) -> list[list[str]]:
    head = [
        "workload",
        "models",
        "steps/model",
        "baseline s/model",
        "fast s/model",
        "ms/model-step (base/fast)",
        "speed-up",
        "target",
        "engine path",
        "peak RSS MiB (base/fast)",
    ]
    rows = [head]
    for r in results["rows"]:
        w = r["workload"]
        data = "all" if w["n_train"] is None else f"{w['n_train']} train"
        target = (
            ""
            if r["target"] is None
            else f"{r['target']:g}x " + ("(met)" if r["meets_target"] else "(missed)")
        )
        rows.append(
            [
                f"{_LABELS.get(r['name'], r['name'])} ({data}, {w['epochs']} ep.)",
                str(r["models"]),
                str(r["steps_per_model"]),
                f"{r['baseline_s_per_model']:.3g}",
                f"{r['fast_s_per_model']:.3g}",
                f"{r['baseline_ms_per_model_step']:.3g} / {r['fast_ms_per_model_step']:.3g}",
                f"{r['speedup']:.1f}x",
                target,
                _path_cell(r),
                f"{r['baseline_peak_rss_mib']:.0f} / {r['fast_peak_rss_mib']:.0f}",
            ]
        )
    return rows


def _path_cell(row: dict) -> str:
    """The engine's path, with the graph counts where a graph was tried."""
    path, counts = row.get("fast_path"), row.get("graph_counts") or {}
    if path is None:
        return "not recorded"
    if not (counts.get("captures") or counts.get("fallbacks")):
        return path
    return (
        f"{path} ({counts['captures']} captures, {counts['replays']} replays, "
        f"{counts['fallbacks']} fallbacks)"
    )


def machine_line(results: dict) -> str:
    m = results["machine"]
    where = m.get("gpu") or m["processor"]
    load = ""
    if "load_average" in m:  # 1-minute load average, at the start and at the end of the run
        start = m.get("load_average_start", m["load_average"])[0]
        load = f", load average {start} at the start and {m['load_average'][0]} at the end"
    precision = m.get("float32_matmul_precision")
    precision = f", float32 products {precision.upper()}" if precision else ""
    return (
        f"{m['device'].upper()}: {where}; {m['cpu_count']} CPU cores, torch {m['torch']} with "
        f"{m['torch_threads']} thread(s){precision}; Python {m['python']}{load}; "
        f"{results['date']}, commit {results.get('commit') or 'unknown'}"
    )


def format_table(results: dict) -> str:
    """The results as a plain-text table, with the machine they were measured on."""
    rows = _table_rows(results)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    text = [*lines, "", machine_line(results)]
    if results.get("peers"):
        prows = peer_rows(results)
        pw = [max(len(row[i]) for row in prows) for i in range(len(prows[0]))]
        text += ["", *("  ".join(c.ljust(w) for c, w in zip(r, pw, strict=True)) for r in prows)]
        text += [peak_line(results)]
    return "\n".join(text)


_PEER_LABELS = {
    "tutorial": "tutorial DataLoader loop",
    "plain": "plain loop, torch.optim",
    "func": "torch.func ensemble",
    "compile": "torch.compile, plain step",
    "engine": "engine",
}


def peer_rows(results: dict) -> list[list[str]]:
    """One row per workload and method: ms per network-step, GFLOP/s, share of the peak."""
    rows = [["workload", "method", "ms/net-step min (median)", "GFLOP/s", "of peak", "engine x"]]
    for name, p in results.get("peers", {}).items():
        for method, m in p["methods"].items():
            label = [_LABELS.get(name, name), _PEER_LABELS.get(method, method)]
            if not m["available"]:
                rows.append([*label, "not available", "", "", m["reason"]])
                continue
            rows.append(
                [
                    *label,
                    f"{m['ms_min']:.3g} ({m['ms_median']:.3g})",
                    f"{m['gflops']:.3g}",
                    f"{100 * m['fraction_of_peak']:.0f}%",
                    f"{m['engine_speedup']:.2f}x",
                ]
            )
    return rows


def peak_line(results: dict) -> str:
    peaks = [p["gemm_peak"] for p in results.get("peers", {}).values()]
    if not peaks:
        return ""
    best = max(peaks, key=lambda q: q["gflops"])
    return (
        f"float32 GEMM peak measured by the bench: {best['gflops']:.3g} GFLOP/s "
        f"({best['n']} x {best['n']} matrices, {best['threads']} thread(s))"
    )


def rst_table(results: dict) -> str:
    """The results as a reStructuredText list-table followed by the machine line."""
    out = [".. list-table::", "   :header-rows: 1", ""]
    for row in _table_rows(results):
        out.append("   * - " + row[0])
        out += [f"     - {c}" for c in row[1:]]
    out += ["", f"Measured on {machine_line(results)}."]
    if results.get("peers"):
        out += ["", ".. list-table::", "   :header-rows: 1", ""]
        for row in peer_rows(results):
            out.append("   * - " + row[0])
            out += [f"     - {c}" for c in row[1:]]
        out += ["", peak_line(results) + "."]
    if results.get("quick"):
        out += ["", "**Quick mode** (``MLA_QUICK=1``): shrunken workloads, a smoke test only."]
    return "\n".join(out)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(
        prog="python -m mla_course.bench", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "path", nargs="?", default=str(DEFAULT_PATH), help="where to write the JSON"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads in every process"
    )
    parser.add_argument(
        "--device", default=None, help="cpu or cuda (default: MLA_DEVICE, else cuda if present)"
    )
    parser.add_argument("--full", action="store_true", help="full-size sweeps on a CPU too (slow)")
    parser.add_argument("--_phase", help=argparse.SUPPRESS)
    parser.add_argument("--_work", help=argparse.SUPPRESS)
    parser.add_argument("--_out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads is not None and args.threads <= 0:
        parser.error(f"--threads={args.threads}: expected a positive integer")

    import torch

    from .settings import get_device, quick

    if args.threads:
        torch.set_num_threads(args.threads)
    if args._phase == "peers":  # a worker process: the peers on one workload's steps
        work = json.loads(args._work)
        result = measure_peers(work, args.device, reps=1 if quick() else 3)
        Path(args._out).write_text(json.dumps(result))
        return result
    if args._phase:  # a worker process: one measurement
        result = measure(args._phase, json.loads(args._work), args.device)
        Path(args._out).write_text(json.dumps(result))
        return result

    with contextlib.suppress(OSError):
        load_start = [round(x, 2) for x in os.getloadavg()]
    device = get_device(args.device)
    works = workloads(device.type, full=args.full, quick=quick())
    targets = TARGETS.get(device.type, {})
    baselines: dict[str, dict] = {}
    rows, peers = [], {}
    for name, work in works.items():
        base_work = {**work, "models": 1}
        key = json.dumps(base_work, sort_keys=True)
        if key not in baselines:
            print(f"[bench] baseline, {name} workload ...", flush=True)
            baselines[key] = _in_subprocess("baseline", base_work, args)
        print(f"[bench] fast path, {name} ...", flush=True)
        fast = _in_subprocess("fast", work, args)
        rows.append(_row(name, work, baselines[key], fast, targets.get(name)))
        print(f"[bench] peers, {name} (training steps only) ...", flush=True)
        peers[name] = _in_subprocess("peers", work, args)
    results = {
        "format": 1,
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": _commit(),
        "quick": quick(),
        "machine": _machine(device.type, args.threads or torch.get_num_threads()),
        "rows": rows,
        "peers": peers,
    }
    if "load_average" in results["machine"]:
        results["machine"]["load_average_start"] = load_start
    path = Path(args.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(results, indent=2) + "\n")
    os.replace(tmp, path)
    print(format_table(results))
    print(f"[bench] wrote {path}")
    return results


# ---------------------------------------------------------------------------
# The peers: the same training steps done the strongest plain ways (issue 21).
# ---------------------------------------------------------------------------

SIZES = [784, 120, 80, 10]
BATCH = 64
_TORCH_OPTIM = {  # the engine's optimisers as torch.optim (names as in mla_course.optim)
    "sgd": lambda ps, lr, kw: __import__("torch").optim.SGD(ps, lr=lr),
    "momentum": lambda ps, lr, kw: __import__("torch").optim.SGD(ps, lr=lr, **kw),
    "nesterov": lambda ps, lr, kw: __import__("torch").optim.SGD(ps, lr=lr, nesterov=True, **kw),
    "adam": lambda ps, lr, kw: __import__("torch").optim.Adam(ps, lr=lr, **kw),
    "rmsprop": lambda ps, lr, kw: __import__("torch").optim.RMSprop(ps, lr=lr, **kw),
}


def flops_per_step(sizes=SIZES, batch=BATCH) -> int:
    """FLOPs of one training step of one network: 3 x the forward matrix products."""
    return 3 * 2 * batch * sum(a * b for a, b in itertools.pairwise(sizes))


def gemm_peak(n: int = 2048, reps: int = 5) -> dict:
    """The machine's float32 GEMM rate, measured on ``n x n`` matrices (best of ``reps``)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up
    best = min(_seconds(lambda: a @ b) for _ in range(reps))
    return {"n": n, "threads": torch.get_num_threads(), "gflops": 2 * n**3 / best / 1e9}


def _seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _net(activation: str, seed: int):
    import torch

    from .models import MLP

    torch.manual_seed(seed)
    return MLP(SIZES, activation)


def _peer_networks(models: int):
    """``(activation, optimizer, lr, kwargs, seed)`` of every network of a workload."""
    if models == 1:
        return [("sigmoid", "sgd", 0.1, {}, 0)]
    configs, seeds = _sweep_configs(models, None, None, 1)
    return [
        (c.activation, c.optimizer, c.lr, dict(c.optimizer_kwargs), s)
        for c in configs.values()
        for s in seeds
    ]


def _time_tutorial(nets, X, y, steps):
    """The tutorial's training loop: DataLoader batches, .to(device), torch.optim.SGD."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    loader = DataLoader(TensorDataset(X.cpu(), y.cpu()), batch_size=BATCH, shuffle=True)
    model = _net("sigmoid", 0).to(X.device)  # the tutorial's one network (sigmoid, SGD)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    loss_fn = torch.nn.CrossEntropyLoss()
    done, start = 0, time.perf_counter()
    while done < steps:
        for xb, yb in loader:
            xb, yb = xb.to(X.device), yb.to(X.device)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad()
            done += 1
            if done == steps:
                break
    return time.perf_counter() - start  # per network: the tutorial trains one at a time


def _batches(X, steps, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    return torch.randint(len(X), (steps, BATCH), generator=g).to(X.device)


def _time_plain(nets, X, y, steps, step_fn=None):
    """A device-resident loop with torch.optim, one network after another."""
    import torch.nn.functional as F

    total = 0.0
    for act, opt_name, lr, kw, seed in nets:
        model = _net(act, seed).to(X.device)
        opt = _TORCH_OPTIM[opt_name](model.parameters(), lr, kw)

        def step(xb, yb, model=model, opt=opt):
            loss = F.cross_entropy(model(xb), yb)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=False)

        fn = step if step_fn is None else step_fn(step)
        idx = _batches(X, steps, seed)
        start = time.perf_counter()
        for i in idx:
            fn(X[i], y[i])
        total += time.perf_counter() - start
    return total / len(nets)


def _time_func(nets, X, y, steps):
    """PyTorch's model-ensembling recipe: stack_module_state + vmap(grad(functional_call)),
    one group per activation and optimiser (its learning rate and seeds stacked)."""
    import copy

    import torch
    import torch.nn.functional as F
    from torch.func import functional_call, grad, stack_module_state, vmap

    groups: dict = {}
    for act, opt_name, lr, kw, seed in nets:
        groups.setdefault((act, opt_name, lr, json.dumps(kw)), []).append(seed)
    total = 0.0
    for (act, opt_name, lr, kw), seeds in groups.items():
        models = [_net(act, s).to(X.device) for s in seeds]
        params, buffers = stack_module_state(models)
        base = copy.deepcopy(models[0]).to("meta")
        opt = _TORCH_OPTIM[opt_name](list(params.values()), lr, json.loads(kw))

        def loss_fn(p, b, xb, yb, base=base):
            return F.cross_entropy(functional_call(base, (p, b), (xb,)), yb)

        grads_of = vmap(grad(loss_fn))
        idx = torch.stack([_batches(X, steps, s) for s in seeds], 1)  # (steps, M, batch)
        start = time.perf_counter()
        for i in idx:
            g = grads_of(params, buffers, X[i], y[i])
            for k, p in params.items():
                p.grad = g[k]
            opt.step()
        total += time.perf_counter() - start
    return total / len(nets)


def _time_engine(nets, X, y, steps):
    """The engine's training steps (:class:`mla_course.engine._Trainer`), all networks at once."""
    import torch

    from . import engine

    members = [
        engine.Member(_net(a, s), optimizer=o, lr=lr, optimizer_kwargs=kw, seed=s)
        for a, o, lr, kw, s in nets
    ]
    hypers = [engine._hypers(m) for m in members]
    order = sorted(
        range(len(members)),
        key=lambda i: (*engine._group_key(members[i], hypers[i]), members[i].model.activation),
    )
    trainer = engine._Trainer(
        [members[i] for i in order],
        (X, y),
        (X[:BATCH], y[:BATCH]),
        BATCH,
        X.device,
        False,
        hypers=[hypers[i] for i in order],
    )
    idx = torch.stack([_batches(X, steps, s) for s in trainer.seeds], 1)  # (steps, seeds, batch)
    start = time.perf_counter()
    for i in idx:
        trainer.step(i)
    return (time.perf_counter() - start) / len(nets)


def _compiled(step):
    import torch

    return torch.compile(step)


PEERS = {
    "tutorial": _time_tutorial,
    "plain": _time_plain,
    "func": _time_func,
    "compile": lambda nets, X, y, steps: _time_plain(nets, X, y, steps, _compiled),
    "engine": _time_engine,
}


def measure_peers(work: dict, device=None, *, steps: int = 20, reps: int = 3) -> dict:
    """ms per network-step of each peer on the training steps of ``work`` (min and median of
    ``reps``), with the GEMM peak of this process and each method's fraction of it."""
    import statistics

    import torch

    from .settings import get_device

    device = get_device(device)
    nets = _peer_networks(work["models"])
    g = torch.Generator().manual_seed(0)
    X = torch.rand(6400, SIZES[0], generator=g).to(device)  # the step's cost is data-blind
    y = torch.randint(SIZES[-1], (6400,), generator=g).to(device)
    peak = gemm_peak()
    flops = flops_per_step()
    out = {"steps": steps, "reps": reps, "gemm_peak": peak, "flops_per_step": flops}
    methods = {}
    for name, fn in PEERS.items():
        if name == "func" and work["models"] == 1:
            continue  # an ensemble of one is the plain loop
        if name == "compile" and work["models"] > 1:
            methods[name] = {
                "available": False,
                "reason": "measured on Question 1 only: a loop over networks recompiles each one",
            }
            continue
        try:
            fn(nets[:1], X, y, 2)  # warm-up (and, for compile, the compilation)
            times = [1e3 * fn(nets, X, y, steps) / steps for _ in range(reps)]
        except Exception as err:  # torch.compile needs a compiler at hand
            if name != "compile":
                raise
            methods[name] = {"available": False, "reason": f"{type(err).__name__}: {err}"[:200]}
            continue
        ms = min(times)
        methods[name] = {
            "available": True,
            "ms_min": ms,
            "ms_median": statistics.median(times),
            "gflops": flops / (ms / 1e3) / 1e9,
            "fraction_of_peak": flops / (ms / 1e3) / 1e9 / peak["gflops"],
        }
    engine_ms = methods["engine"]["ms_min"]
    for m in methods.values():
        if m["available"]:
            m["engine_speedup"] = m["ms_min"] / engine_ms
    out["methods"] = methods
    return out


if __name__ == "__main__":
    main()
