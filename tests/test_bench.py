"""The benchmark: its workloads, measurements, JSON, table and Sphinx directive (tiny sizes)."""

import json
from pathlib import Path

import pytest
import torch

from mla_course import bench

TINY = {"n_train": 128, "n_test": 64, "epochs": 1, "models": 1}


@pytest.fixture(autouse=True)
def _one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_workloads_and_sweep_configurations():
    cpu, gpu = bench.workloads("cpu"), bench.workloads("cuda")
    assert [w["models"] for w in cpu.values()] == [1, 32, 256]
    assert cpu["question1"] == gpu["sweep256"] | {"models": 1}  # a GPU runs the sweeps in full
    assert cpu["question1"]["epochs"] == 2 and cpu["question1"]["n_train"] is None
    assert bench.workloads("cpu", quick=True)["question1"]["n_train"] == 1280
    for models in (32, 256):
        configs, seeds = bench._sweep_configs(models, 100, 100, 1)
        assert len(configs) * len(seeds) == models
        assert len({(c.activation, c.optimizer) for c in configs.values()}) > 4  # mixed
    with pytest.raises(ValueError, match="models=30"):
        bench._sweep_configs(30, 100, 100, 1)


def test_measure_both_ways_on_a_tiny_workload(monkeypatch):
    monkeypatch.setenv("MLA_NO_CACHE", "1")
    base = bench.measure("baseline", TINY, "cpu")
    fast = bench.measure("fast", TINY, "cpu")
    sweep = bench.measure("fast", {**TINY, "n_train": 64, "models": 32}, "cpu")
    assert base["steps"] == fast["steps"] == 2 and sweep["steps"] == 1
    assert fast["engine"]["path"] == sweep["engine"]["path"] == "eager" and "engine" not in base
    assert 0 < base["loop_seconds"] < base["seconds"]
    for m in (base, fast, sweep):
        assert m["seconds"] > 0 and m["peak_rss_mib"] > 0
    with pytest.raises(ValueError, match="phase='slow'"):
        bench.measure("slow", TINY, "cpu")


def _fake_results():
    rows = [
        bench._row(
            "question1",
            {"n_train": None, "n_test": None, "epochs": 2, "models": 1},
            {"seconds": 30.0, "loop_seconds": 28.0, "steps": 1876, "peak_rss_mib": 900},
            {
                "seconds": 10.0,
                "steps": 1876,
                "peak_rss_mib": 800,
                "engine": {"path": "cuda-graph", "captures": 1, "replays": 1874, "fallbacks": 0},
            },
            2.5,
        ),
        bench._row(
            "sweep32",
            {"n_train": 6400, "n_test": 1000, "epochs": 1, "models": 32},
            {"seconds": 3.0, "loop_seconds": 2.0, "steps": 100, "peak_rss_mib": 900},
            {"seconds": 16.0, "steps": 100, "peak_rss_mib": 1000},
            5.0,
        ),
    ]
    machine = {
        "device": "cpu",
        "processor": "Test CPU",
        "cpu_count": 2,
        "torch_threads": 1,
        "torch": "2.x",
        "python": "3.11",
        "load_average": [1.0, 1.0, 1.0],
        "float32_matmul_precision": "ieee",
    }
    return {
        "format": 1,
        "date": "2026-01-01 00:00 UTC",
        "commit": "abc1234",
        "quick": False,
        "machine": machine,
        "rows": rows,
    }


def _fake_peers():
    method = {"available": True, "ms_min": 2.0, "ms_median": 2.5, "gflops": 20.0}
    return {
        "gemm_peak": {"n": 2048, "threads": 1, "gflops": 80.0},
        "methods": {
            "plain": {**method, "fraction_of_peak": 0.25, "engine_speedup": 2.0},
            "compile": {"available": False, "reason": "no compiler"},
            "engine": {**method, "ms_min": 1.0, "fraction_of_peak": 0.5, "engine_speedup": 1.0},
        },
    }


def test_measure_peers_on_a_tiny_sweep():
    """Every peer runs on the same steps; the JSON has each one, the GEMM peak and fractions."""
    out = bench.measure_peers({"models": 32}, "cpu", steps=2, reps=1)
    assert set(out["methods"]) == set(bench.PEERS)
    assert out["gemm_peak"]["gflops"] > 0 and out["gemm_peak"]["threads"] == 1
    assert out["flops_per_step"] == 3 * 2 * 64 * (784 * 120 + 120 * 80 + 80 * 10)
    assert out["methods"]["compile"]["available"] is False  # a sweep: not compiled
    for name in ("tutorial", "plain", "func", "engine"):
        m = out["methods"][name]
        assert 0 < m["ms_min"] <= m["ms_median"]
        assert m["gflops"] == pytest.approx(out["flops_per_step"] / m["ms_min"] / 1e6)
        assert m["fraction_of_peak"] == pytest.approx(m["gflops"] / out["gemm_peak"]["gflops"])
    assert out["methods"]["engine"]["engine_speedup"] == 1.0


def test_rows_table_and_rst():
    results = _fake_results()
    q1, sweep = results["rows"]
    assert q1["speedup"] == pytest.approx(3.0) and q1["meets_target"] is True
    assert sweep["fast_s_per_model"] == pytest.approx(0.5) and sweep["speedup"] == pytest.approx(
        4.0
    )
    assert sweep["meets_target"] is False
    assert sweep["baseline_ms_per_model_step"] == pytest.approx(20.0)
    text = bench.format_table(results)
    assert "3.0x" in text and "5x (missed)" in text and "Test CPU" in text and "1 thread" in text
    assert "float32 products IEEE" in text
    assert "cuda-graph (1 captures, 1874 replays, 0 fallbacks)" in text  # the path, per row
    assert "not recorded" in text  # the second row's fake measurement has no engine record
    rst = bench.rst_table(results)
    assert rst.startswith(".. list-table::") and rst.count("   * - ") == 3 and "20 / 5" in rst


def test_main_writes_json_and_prints_the_table(tmp_path, monkeypatch, capsys):
    def fake(phase, work, args):
        if phase == "peers":
            return _fake_peers()
        return {
            "seconds": 4.0 if phase == "baseline" else 1.0 * work["models"] / 8,
            "loop_seconds": 4.0 if phase == "baseline" else None,
            "steps": 10,
            "peak_rss_mib": 100.0,
        }

    monkeypatch.setattr(bench, "_in_subprocess", fake)
    monkeypatch.setenv("MLA_QUICK", "1")
    out = tmp_path / "sub" / "bench.json"
    results = bench.main([str(out), "--device", "cpu", "--threads", "1"])
    assert json.loads(out.read_text()) == results
    assert [r["name"] for r in results["rows"]] == ["question1", "sweep32", "sweep256"]
    assert results["rows"][1]["speedup"] == pytest.approx(32.0) and results["quick"] is True
    printed = capsys.readouterr().out
    assert "sweep, 256 models" in printed and f"wrote {out}" in printed
    assert set(results["peers"]) == {"question1", "sweep32", "sweep256"}
    assert "plain loop, torch.optim" in printed and "not available" in printed
    assert "GEMM peak" in printed and "25%" in printed and "2.00x" in printed
    with pytest.raises(SystemExit):
        bench.main([str(out), "--threads", "0"])


def test_the_sphinx_directive_reads_the_json(tmp_path):
    sphinx = pytest.importorskip("sphinx.application")
    src = tmp_path / "src"
    (src / "_static").mkdir(parents=True)
    (src / "_static" / "latest.json").write_text(json.dumps(_fake_results()))
    ext = Path(__file__).resolve().parents[1] / "docs" / "_ext"
    (src / "conf.py").write_text(
        f"import sys\nsys.path.insert(0, {str(ext)!r})\nextensions = ['bench_table']\n"
    )
    (src / "index.rst").write_text("Perf\n====\n\n.. bench-table:: _static/latest.json\n")
    app = sphinx.Sphinx(
        src,
        src,
        tmp_path / "out",
        tmp_path / "doctrees",
        "html",
        status=None,
        warning=None,
        freshenv=True,
    )
    app.build()
    html = (tmp_path / "out" / "index.html").read_text()
    assert "<table" in html and "Question 1" in html and "Test CPU" in html
