"""The results cache: hits, misses, atomic writes, corrupt entries, MLA_NO_CACHE."""

import json
import math
import os

import pytest

from mla_course import cache, experiments
from mla_course.experiments import Config, run, sweep

PARTS = {"kind": "test", "config": {"lr": 0.1, "hidden": [16]}, "seed": 0}


@pytest.fixture(autouse=True)
def _fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLA_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("MLA_NO_CACHE", raising=False)


def _counting(value):
    calls = []

    def compute():
        calls.append(1)
        return value

    return compute, calls


def test_hit_on_the_same_parts_and_code():
    compute, calls = _counting({"acc": [0.5, 0.75], "nan": math.nan})
    first = cache.memoize(PARTS, compute)
    second = cache.memoize(json.loads(json.dumps(PARTS)), compute)  # equal, not identical
    assert len(calls) == 1 and second["acc"] == first["acc"] and math.isnan(second["nan"])
    assert cache.entry_path(cache.key(PARTS)).is_file()


def test_miss_on_changed_parts_or_code(monkeypatch):
    cache.store(cache.key(PARTS), {"acc": 0.5})
    changed = {**PARTS, "config": {"lr": 0.2, "hidden": [16]}}
    assert cache.key(changed) != cache.key(PARTS) and cache.load(cache.key(changed)) is None
    assert cache.load(cache.key(PARTS)) == {"acc": 0.5}
    monkeypatch.setattr(cache, "_fingerprint", "another version of the code")
    assert cache.load(cache.key(PARTS)) is None


def test_fingerprint_covers_the_modules_that_compute_results():
    cache._fingerprint = None  # recomputed from the files
    assert (
        cache.code_fingerprint() == cache.code_fingerprint() and len(cache.code_fingerprint()) == 64
    )
    assert {"engine.py", "train.py", "optim.py"}.isdisjoint(cache._NOT_RESULTS)


def test_a_crash_mid_write_leaves_no_entry_and_keeps_the_old_one(monkeypatch):
    k = cache.key(PARTS)
    cache.store(k, {"acc": 0.5})

    def crash(fd):
        raise KeyboardInterrupt("killed while writing")

    other = cache.key({**PARTS, "seed": 1})
    with monkeypatch.context() as m:
        m.setattr(os, "fsync", crash)  # after part of the file is written, before the rename
        with pytest.raises(KeyboardInterrupt):
            cache.store(k, {"acc": 0.9, "big": list(range(10000))})
        with pytest.raises(KeyboardInterrupt):
            cache.store(other, {"acc": 0.9})
    assert cache.load(k) == {"acc": 0.5}  # the old entry, whole
    assert cache.load(other) is None and not cache.entry_path(other).exists()
    folder = cache.entry_path(k).parent
    assert sorted(p.name for p in folder.iterdir()) == [f"{k}.json"]  # no temporary file left


def test_a_leftover_temporary_file_is_not_an_entry():
    """What a process killed by SIGKILL leaves behind: a temporary file, never the entry."""
    k = cache.key(PARTS)
    path = cache.entry_path(k)
    path.parent.mkdir(parents=True)
    (path.parent / f".{k[:8]}-abc.tmp").write_text('{"format": 1, "key": "')
    assert cache.load(k) is None
    assert cache.memoize(PARTS, lambda: {"acc": 1.0}) == {"acc": 1.0}


@pytest.mark.parametrize(
    "text",
    [
        '{"format": 1, "key": "',
        "",
        "\x00\x01garbage",
        "[1, 2]",
        '{"format": 1, "key": "0000", "value": {"acc": 0.1}}',
    ],
)
def test_a_corrupt_entry_is_ignored_and_rewritten(text):
    k = cache.key(PARTS)
    path = cache.entry_path(k)
    path.parent.mkdir(parents=True)
    path.write_text(text)
    assert cache.load(k) is None
    compute, calls = _counting({"acc": 0.25})
    assert cache.memoize(PARTS, compute) == {"acc": 0.25} and len(calls) == 1
    assert cache.load(k) == {"acc": 0.25}


def test_no_cache_forces_a_fresh_run_and_stores_it(monkeypatch):
    cache.store(cache.key(PARTS), {"acc": 0.5})
    monkeypatch.setenv("MLA_NO_CACHE", "1")
    assert not cache.enabled() and cache.load(cache.key(PARTS)) is None
    compute, calls = _counting({"acc": 0.75})
    assert cache.memoize(PARTS, compute) == {"acc": 0.75} and len(calls) == 1
    monkeypatch.setenv("MLA_NO_CACHE", "0")
    assert cache.load(cache.key(PARTS)) == {"acc": 0.75}


def test_bad_parts_and_keys_are_reported():
    with pytest.raises(TypeError, match="plain JSON data"):
        cache.key({"lr": math.nan})
    with pytest.raises(TypeError, match="plain JSON data"):
        cache.key({"f": print})
    with pytest.raises(TypeError, match="expected a dict"):
        cache.key(["lr"])
    with pytest.raises(ValueError, match="key='abc'"):
        cache.entry_path("abc")
    with pytest.raises(TypeError):  # not JSON data: nothing written
        cache.store(cache.key(PARTS), {"f": print})
    assert not cache.entry_path(cache.key(PARTS)).exists()


def test_experiments_reuse_unchanged_runs(monkeypatch):
    config = Config(n_train=300, n_test=100, hidden=(8,), epochs=1, batch_size=50)
    first = run(config, seed=1)
    trained = []
    real = experiments.train_many

    def spy(members, *args, **kwargs):
        trained.append(len(members))
        return real(members, *args, **kwargs)

    monkeypatch.setattr(experiments, "train_many", spy)
    assert run(config, seed=1).to_dict() == first.to_dict() and trained == []  # a hit
    table = sweep({"same": config, "other lr": config.replace(lr=0.5)}, seeds=[1, 2])
    assert trained == [3]  # only the three new (config, seed) pairs, trained together
    assert table["same"].histories[0].to_dict() == first.to_dict()
    monkeypatch.setenv("MLA_NO_CACHE", "1")
    run(config, seed=1)
    assert trained == [3, 1]
