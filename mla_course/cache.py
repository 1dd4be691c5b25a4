"""A results cache on disk, so that rebuilding the book reuses the runs that did not change.

Entries live in one SQLite database, ``<cache_dir>/results.sqlite`` (WAL mode,
so several processes read and write it at once). A row holds a *key*, a value
(JSON text, or bytes such as a network's weights in safetensors format), the
parts the key was made from, the time it was written and the package version.
Each write is one transaction: a run killed midway leaves the old row or none.

The key is the SHA-256 of the entry's description (plain JSON data, e.g. a
configuration and a seed) and of :func:`code_fingerprint`: the syntax trees,
without docstrings, of the package's modules that compute results (an explicit
list: no stray file in the folder counts), the versions of Python, torch and
torchvision, and the code of any function or class that was patched in the
running process (so a patched run is never served to an unpatched one).

A row that cannot be read or decoded counts as missing. If the database cannot
be opened or written (``MLA_CACHE_DIR`` read-only, a file, or its database not a
regular file), one :class:`CacheWarning` names ``MLA_CACHE_DIR`` and the run goes
on without caching. ``MLA_NO_CACHE=1`` ignores every entry (fresh results are
still written).
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import inspect
import json
import marshal
import os
import platform
import sqlite3
import stat
import sys
import time
import warnings
from pathlib import Path

import torch
import torchvision

from .settings import _flag, cache_dir

__all__ = ["CacheWarning", "code_fingerprint", "database_path", "enabled", "key", "load", "store"]


class CacheWarning(UserWarning):
    """The cache folder cannot be written: the run goes on without caching."""


_warned: set[str] = set()  # the cache folders already warned about in this process


def warn_unwritable(err: BaseException, what: str = "the results cache") -> None:
    """One :class:`CacheWarning` per cache folder and process, naming ``MLA_CACHE_DIR``."""
    where = os.environ.get("MLA_CACHE_DIR", "").strip() or "~/.cache/mla_course"
    if where in _warned:
        return
    _warned.add(where)
    warnings.warn(
        CacheWarning(
            f"{what} cannot be written (MLA_CACHE_DIR={where!r}: {err}); going on without "
            f"caching. Set MLA_CACHE_DIR to a writable folder to keep results."
        ),
        stacklevel=4,  # the caller of store() or load_tensors()
    )


# The package's modules, in two lists: those whose code computes results (the key covers
# them) and those that only draw, time, check, show or summarise them. A stray file in the
# folder is in neither and is never read; tests/test_cache.py fails if a module of the
# package is in neither list.
RESULT_MODULES = ("__init__", "augment", "cache", "config", "data", "diagnostics", "engine")
RESULT_MODULES += ("init", "layers", "losses", "models", "optim", "penalties", "runs")
RESULT_MODULES += ("settings", "surfaces", "train")
NOT_RESULTS = ("bench", "claims", "plots", "source", "tables")
_PACKAGE = Path(__file__).parent
_SCHEMA = "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value TEXT, blob BLOB, "
_SCHEMA += "parts TEXT, created REAL NOT NULL, version TEXT)"
_disk: dict[str, tuple[str, dict]] = {}  # module -> (hash of its syntax tree, its top-level code)


def enabled() -> bool:
    """Whether entries may be read (``MLA_NO_CACHE`` unset or 0)."""
    return not _flag("MLA_NO_CACHE")


def _on_disk(name: str) -> tuple[str, dict]:
    """The hash of module ``name``'s syntax tree without docstrings, and its top-level code."""
    if name not in _disk:
        path = _PACKAGE / f"{name}.py"
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source, filename=str(path))
        code = compile(tree, str(path), "exec")
        defined = {c.co_name: c for c in code.co_consts if hasattr(c, "co_code")}
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            first = body[0] if isinstance(body, list) and body else None
            value = first.value if isinstance(first, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                node.body = body[1:] or [ast.Pass()]
        _disk[name] = (hashlib.sha256(ast.dump(tree).encode()).hexdigest(), defined)
    return _disk[name]


def _live(module, defined: dict) -> list[str]:
    """What differs between ``module`` as it runs and as its file defines it."""
    out = []
    for name, obj in sorted(vars(module).items()):
        func = inspect.unwrap(obj) if callable(obj) else obj
        if name in defined and inspect.isfunction(func):
            if (
                func.__code__.co_code == defined[name].co_code
                and func.__module__ == module.__name__
            ):
                continue
            out.append(f"{name}:{hashlib.sha256(marshal.dumps(func.__code__)).hexdigest()}")
        elif name in defined or (inspect.isclass(obj) and obj.__module__ == module.__name__):
            if inspect.isclass(obj) and obj.__module__ == module.__name__:
                # A method counts as the class's own if it, or what it wraps, is defined in the
                # class or a base: torch.optim wraps each optimiser's ``step`` in its own
                # hook when the first one is built, which is no change of ours.
                owners = tuple(f"{c.__qualname__}." for c in obj.__mro__)
                members = [f for f in vars(obj).values() if inspect.isfunction(f)]
                if all(
                    f.__qualname__.startswith(owners)
                    or inspect.unwrap(f).__qualname__.startswith(owners)
                    for f in members
                ):
                    continue
            out.append(f"{name}:{type(obj).__qualname__}:{id(obj)}:{id(sys.modules)}")
    return out


def code_fingerprint() -> str:
    """SHA-256 of the package's result modules on disk, the code patched into them in this
    process, and the versions of Python, torch and torchvision."""
    digest = hashlib.sha256(f"{platform.python_version()} {torch.__version__} ".encode())
    digest.update(torchvision.__version__.encode())
    for name in RESULT_MODULES:
        if not (_PACKAGE / f"{name}.py").is_file():
            continue
        tree, defined = _on_disk(name)
        digest.update(f"\0{name}\0{tree}".encode())
        module = sys.modules.get(__package__ if name == "__init__" else f"{__package__}.{name}")
        if module is not None:
            digest.update("\0".join(_live(module, defined)).encode())
    return digest.hexdigest()


def key(parts: dict) -> str:
    """The key of an entry described by ``parts`` (plain JSON data), for the code running."""
    if not isinstance(parts, dict):
        raise TypeError(f"parts={parts!r}: expected a dict")
    try:
        text = json.dumps({"parts": parts, "code": code_fingerprint()}, sort_keys=True,
                          allow_nan=False)  # fmt: skip
    except (TypeError, ValueError) as err:
        raise TypeError(f"the cache key parts must be plain, finite JSON data: {err}") from None
    return hashlib.sha256(text.encode()).hexdigest()


def database_path() -> Path:
    """The database file; OSError if it exists and is not a regular file."""
    path = cache_dir() / "results.sqlite"
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        if p.is_symlink() or (p.exists() and not stat.S_ISREG(p.stat().st_mode)):
            raise OSError(f"{p} is not a regular file: remove it, or set MLA_CACHE_DIR elsewhere")
    return path


def _connect() -> sqlite3.Connection:
    db = sqlite3.connect(database_path(), timeout=60, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(_SCHEMA)
    return db


def load(k: str):
    """The value stored under key ``k`` (JSON data or bytes), or ``None`` if there is none,
    it cannot be read, or the cache is disabled."""
    if not enabled():
        return None
    try:
        db = _connect()
        try:
            row = db.execute("SELECT value, blob FROM results WHERE key = ?", (k,)).fetchone()
        finally:
            db.close()
        if row is None:
            return None
        return bytes(row[1]) if row[1] is not None else json.loads(row[0])
    except (OSError, sqlite3.Error) as err:
        warn_unwritable(err)
    except (TypeError, ValueError, RecursionError):
        pass  # a damaged row counts as missing; the next store replaces it
    return None


def store(k: str, value, parts: dict | None = None) -> bool:
    """Write ``value`` (plain JSON data, or bytes) under key ``k`` in one transaction.

    Returns whether it was written: ``False``, after one :class:`CacheWarning`
    naming ``MLA_CACHE_DIR``, if the cache cannot be written."""
    if value is None:
        raise TypeError("value=None cannot be cached: load() returns None for a missing entry")
    blob = value if isinstance(value, bytes) else None
    try:
        text = None if blob is not None else json.dumps(value)
        row = (k, text, blob, json.dumps(parts), time.time(), _version())
    except (TypeError, ValueError) as err:
        raise TypeError(f"the value to cache must be plain JSON data or bytes: {err}") from None
    try:
        db = _connect()
        try:
            db.execute("INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?)", row)
        finally:
            db.close()
    except (OSError, sqlite3.Error) as err:
        warn_unwritable(err)
        return False
    return True


def _version() -> str:
    try:
        return importlib.metadata.version("mla-course")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def memoize(parts: dict, compute):
    """``load(key(parts))`` if there is an entry, else ``compute()``, stored then returned."""
    k = key(parts)
    value = load(k)
    if value is None:
        value = compute()
        store(k, value, parts)
    return value
