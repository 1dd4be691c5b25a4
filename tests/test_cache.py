"""The results cache: hits, misses, atomic writes, corrupt entries, MLA_NO_CACHE."""

import json
import math
import os
import subprocess
import sys
import textwrap
import time
import warnings

import pytest

from mla_course import cache, utils

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
    computing = {"config.py", "runs.py", "data.py", "models.py", "layers.py", "init.py"}
    computing |= {"losses.py", "regularization.py", "utils.py"}
    assert computing.isdisjoint(cache._NOT_RESULTS)


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


# --------------------------------------------------------------------------- issue 14, item 4
def _strict(value):
    """A validator like the one a caller gives: a dict with exactly the fields 'acc', 'loss'."""
    if not isinstance(value, dict) or set(value) != {"acc", "loss"}:
        raise ValueError(f"not a result: {value!r}")
    return all(isinstance(value[f], list) for f in ("acc", "loss"))


GOOD = {"acc": [0.5, 0.75], "loss": [1.0, 0.5]}


def _write_entry(k, **overrides):
    entry = {"format": cache.FORMAT, "key": k, "parts": None, "value": GOOD}
    entry["sha256"] = cache._checksum(entry["value"])
    entry.update(overrides)
    if "value" in overrides and "sha256" not in overrides:
        entry["sha256"] = cache._checksum(overrides["value"])  # a well-formed, wrong value
    path = cache.entry_path(k)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({f: v for f, v in entry.items() if v is not _DROP}))
    return path


class _Drop:
    """Marks a field left out of the entry (a stable repr: test ids must not vary)."""

    def __repr__(self) -> str:
        return "<dropped>"


_DROP = _Drop()


@pytest.mark.parametrize(
    "overrides",
    [
        {"value": {}},
        {"value": []},
        {"value": "a string"},
        {"value": {**GOOD, "extra": [1.0]}},
        {"value": {"acc": [0.5]}},
        {"value": {"acc": 3, "loss": [1.0]}},
        {"extra_field": 1},  # a field the format does not have
        {"sha256": _DROP},  # a missing field
        {"parts": _DROP},
        {"format": True},  # not the integer FORMAT
        {"sha256": "0" * 64},  # a checksum that does not match
    ],
    ids=repr,
)
def test_a_wrong_shaped_entry_counts_as_missing_and_is_rewritten(overrides):
    k = cache.key(PARTS)
    _write_entry(k, **overrides)
    assert cache.load(k, _strict) is None  # no IndexError, no TypeError
    compute, calls = _counting(GOOD)
    assert cache.memoize(PARTS, compute, validate=_strict) == GOOD and len(calls) == 1
    assert cache.memoize(PARTS, compute, validate=_strict) == GOOD and len(calls) == 1
    assert cache.load(k, _strict) == GOOD  # rewritten


def test_a_damaged_number_is_detected_by_the_checksum():
    k = cache.key(PARTS)
    path = cache.store(k, GOOD)
    path.write_text(path.read_text().replace("0.75", "0.95"))  # still valid JSON and schema
    assert cache.load(k, _strict) is None
    compute, calls = _counting(GOOD)
    assert cache.memoize(PARTS, compute, validate=_strict)["acc"] == [0.5, 0.75] and calls == [1]


def test_a_validator_that_returns_false_rejects_the_entry():
    k = cache.key(PARTS)
    cache.store(k, {"acc": "not a list", "loss": []})
    assert cache.load(k) == {"acc": "not a list", "loss": []}
    assert cache.load(k, _strict) is None


def test_none_cannot_be_cached():
    with pytest.raises(TypeError, match="value=None"):
        cache.store(cache.key(PARTS), None)


def test_entries_get_the_usual_permissions():
    old = os.umask(0o022)
    try:
        path = cache.store(cache.key(PARTS), GOOD)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == 0o644


def _dead_pid() -> int:
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


def test_leftovers_of_killed_writers_are_swept(monkeypatch):
    monkeypatch.setattr(cache, "_swept", set())
    k = cache.key(PARTS)
    folder = cache.entry_path(k).parent
    folder.mkdir(parents=True)
    dead = folder / f".{k[:8]}-{_dead_pid()}-abc.tmp"
    live = folder / f".{k[:8]}-{os.getpid()}-def.tmp"  # a writer still at work: kept
    old = folder / f".{k[:8]}-xyz.tmp"  # no pid (older layout), two hours old
    for tmp in (dead, live, old):
        tmp.write_text('{"format": 2, "key": "')
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    cache.store(cache.key({**PARTS, "seed": 7}), GOOD)  # the process's first write sweeps
    assert not dead.exists() and not old.exists() and live.exists()
    assert cache.sweep(max_age_s=0) == 1 and not live.exists()


# --------------------------------------------------------------------------- issue 14, item 3
def test_an_unwritable_cache_warns_once_and_keeps_the_results(monkeypatch):
    monkeypatch.setattr(utils, "_warned", set())

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(args))

    monkeypatch.setattr(cache.tempfile, "mkstemp", read_only)
    compute, calls = _counting(GOOD)
    with pytest.warns(cache.CacheWarning, match="MLA_CACHE_DIR=.*Permission denied"):
        assert cache.memoize(PARTS, compute) == GOOD
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a second failure is silent
        assert cache.memoize({**PARTS, "seed": 3}, compute) == GOOD
    assert len(calls) == 2


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(utils, "_warned", set())
    monkeypatch.setenv("MLA_CACHE_DIR", str(tmp_path / "ro"))
    (tmp_path / "ro").mkdir()
    (tmp_path / "ro").chmod(0o555)
    try:
        with pytest.warns(cache.CacheWarning, match="MLA_CACHE_DIR"):
            assert cache.memoize(PARTS, lambda: GOOD) == GOOD
    finally:
        (tmp_path / "ro").chmod(0o755)


def test_a_cache_dir_that_is_a_file(tmp_path, monkeypatch):
    monkeypatch.setattr(utils, "_warned", set())
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("MLA_CACHE_DIR", str(tmp_path / "file"))
    with pytest.warns(cache.CacheWarning, match=r"MLA_CACHE_DIR=.*file.*it is a file"):
        assert cache.memoize(PARTS, lambda: GOOD) == GOOD
    assert cache.load(cache.key(PARTS)) is None


# --------------------------------------------------------------------------- issue 10, item 6
# keys follow what changes results, and nothing else.
def test_the_code_fingerprint_ignores_comments_and_docstrings(tmp_path):
    def fingerprint(source):
        package = tmp_path / "pkg"
        package.mkdir(exist_ok=True)
        (package / "optim.py").write_text(textwrap.dedent(source))
        (package / "plots.py").write_text(f"COLOUR = {len(source)}\n")  # never counts
        return cache._source_fingerprint(package)

    base = fingerprint('"""Doc."""\ndef step(w, g, lr):\n    return w - lr * g\n')
    same = fingerprint(
        '"""Another doc."""\n\n# a comment\ndef step(w, g, lr):\n'
        '    """What it does."""\n    return w - lr * g  # the update\n'
    )
    other = fingerprint('"""Doc."""\ndef step(w, g, lr):\n    return w - 0.5 * lr * g\n')
    assert same == base and other != base
