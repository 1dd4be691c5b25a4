"""The results cache on SQLite (issue 19): keys, damaged rows, kills, patches, stray files."""

import json
import os
import pathlib
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import warnings

import pytest

from mla_course import cache, optim
from mla_course.cache import CacheWarning

PARTS = {"config": {"lr": 0.1}, "seed": 0}


@pytest.fixture(autouse=True)
def _fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLA_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLA_NO_CACHE", raising=False)
    cache.warn_unwritable.__globals__["_warned"].clear()


def test_hit_miss_and_no_cache(monkeypatch):
    assert cache.load(cache.key(PARTS)) is None
    assert cache.store(cache.key(PARTS), {"acc": 0.5})
    assert cache.load(cache.key({"seed": 0, "config": {"lr": 0.1}})) == {"acc": 0.5}
    assert cache.load(cache.key({**PARTS, "seed": 1})) is None
    assert cache.store(cache.key(PARTS), b"\x00weights")
    assert cache.load(cache.key(PARTS)) == b"\x00weights"
    monkeypatch.setenv("MLA_NO_CACHE", "1")
    assert cache.load(cache.key(PARTS)) is None


def test_bad_parts_and_values_are_reported():
    with pytest.raises(TypeError, match="finite JSON"):
        cache.key({"lr": float("nan")})
    with pytest.raises(TypeError, match="expected a dict"):
        cache.key(["lr"])
    with pytest.raises(TypeError, match="JSON data or bytes"):
        cache.store(cache.key(PARTS), {"f": print})
    assert cache.load(cache.key(PARTS)) is None


def test_a_damaged_row_counts_as_missing():
    k = cache.key(PARTS)
    cache.store(k, {"acc": 0.5})
    with sqlite3.connect(cache.database_path()) as db:
        db.execute("UPDATE results SET value = ? WHERE key = ?", ('{"acc": 0.', k))
    assert cache.load(k) is None
    cache.store(k, {"acc": 0.25})
    assert cache.load(k) == {"acc": 0.25}


def test_an_unwritable_folder_warns_once_and_loses_nothing(tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("MLA_CACHE_DIR", str(blocker))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert cache.load(cache.key(PARTS)) is None
        assert cache.store(cache.key(PARTS), {"acc": 0.5}) is False
    assert len(caught) == 1 and caught[0].category is CacheWarning
    assert "MLA_CACHE_DIR" in str(caught[0].message)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_database_that_is_not_a_regular_file_is_refused(kind, tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    path = folder / "results.sqlite"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    start = time.monotonic()
    with pytest.warns(CacheWarning, match=r"MLA_CACHE_DIR.*not a regular file"):
        assert cache.load(cache.key(PARTS)) is None
    assert cache.store(cache.key(PARTS), {"acc": 0.5}) is False  # warned once already
    assert time.monotonic() - start < 10


WRITER = """
import sys
from mla_course import cache
big = list(range(200000))
print("ready", flush=True)
i = 0
while True:
    cache.store(cache.key({"n": i % 5}), {"n": i % 5, "big": big})
    if i == 0:
        print("stored", flush=True)
    i += 1
"""


def test_kill_9_mid_write_leaves_whole_rows(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", WRITER], stdout=subprocess.PIPE, env=os.environ)
    assert proc.stdout.readline().strip() == b"ready"
    assert proc.stdout.readline().strip() == b"stored"  # one whole row, however loaded the machine
    time.sleep(0.5)  # then killed in the middle of later writes
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    proc.stdout.close()
    with sqlite3.connect(cache.database_path()) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # Read back from a clean process too: earlier tests may have patched this one's code,
    # and a patched process never shares keys with clean ones (finding 1).
    reader = "from mla_course import cache; import json; "
    reader += "print(json.dumps([cache.load(cache.key({'n': n})) for n in range(5)]))"
    out = subprocess.run(
        [sys.executable, "-c", reader], check=True, capture_output=True, env=os.environ
    )
    found = json.loads(out.stdout)
    assert any(v is not None for v in found)
    for n, value in enumerate(found):
        assert value is None or value == {"n": n, "big": list(range(200000))}


CHILD = "from mla_course import cache; print(cache.load(cache.key({'run': 1})))"


def test_a_patched_function_is_not_served_to_unpatched_code(monkeypatch):
    real = optim.sgd_update
    clean = cache.key({"run": 1})
    monkeypatch.setattr(optim, "sgd_update", lambda *a, **k: real(*a, **k))
    patched = cache.key({"run": 1})
    assert patched != clean
    cache.store(patched, {"acc": "patched"})
    out = subprocess.run(
        [sys.executable, "-c", CHILD], check=False, capture_output=True, text=True, env=os.environ
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "None"  # the clean process computes afresh
    monkeypatch.setattr(optim, "sgd_update", real)
    assert cache.key({"run": 1}) == clean


def test_stray_files_in_the_package_folder_do_not_count(tmp_path, monkeypatch):
    before = cache.key(PARTS)
    copy = tmp_path / "mla_course"
    shutil.copytree(cache._PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / ".#optim.py").symlink_to("user@host.1234:1700000000")  # a dangling editor lock
    (copy / "scratch.py").write_text("def broken(:\n")
    (copy / "latin1.py").write_bytes(b"# caf\xe9\n")
    monkeypatch.setattr(cache, "_PACKAGE", copy)
    monkeypatch.setattr(cache, "_disk", {})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache.key(PARTS) == before


def test_editing_code_changes_the_key_and_docstrings_do_not(tmp_path, monkeypatch):
    before = cache.key(PARTS)
    copy = tmp_path / "mla_course"
    shutil.copytree(cache._PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(cache, "_PACKAGE", copy)
    source = (copy / "optim.py").read_text()
    (copy / "optim.py").write_text(source.replace('"""', '"""Edited. ', 1))
    monkeypatch.setattr(cache, "_disk", {})
    assert cache.key(PARTS) == before
    (copy / "optim.py").write_text(source + "\nX = 1\n")
    monkeypatch.setattr(cache, "_disk", {})
    assert cache.key(PARTS) != before


def test_every_module_of_the_package_is_listed_for_the_key_or_not():
    """A new module is never silently left out of the key: it must be put in one list."""
    tracked = {p.stem for p in pathlib.Path(cache.__file__).parent.glob("*.py")}
    listed = set(cache.RESULT_MODULES) | set(cache.NOT_RESULTS)
    assert tracked == listed and not set(cache.RESULT_MODULES) & set(cache.NOT_RESULTS)


def test_building_an_optimiser_leaves_the_key_as_a_fresh_process_has_it():
    """torch.optim wraps each optimiser class's step when the first one is built, and a run
    touches dataclasses and the engine: the key of the code must not change with any of it,
    or no process would ever read another's results."""
    script = (
        "import sys, torch\n"
        "from mla_course import cache, optim\n"
        "from mla_course.config import Config\n"
        "from mla_course.runs import sweep\n"
        "if sys.argv[1] == 'build':\n"
        "    optim.make_optimizer('sgd', [torch.zeros(1, requires_grad=True)], 0.1)\n"
        "    sweep({'a': Config(n_train=100, n_test=50, hidden=(4,), epochs=1)}, seeds=[0])\n"
        "print(cache.code_fingerprint())\n"
    )
    keys = [
        subprocess.run(
            [sys.executable, "-c", script, arg], capture_output=True, text=True, check=True
        ).stdout
        for arg in ("build", "fresh")
    ]
    assert keys[0] == keys[1]
