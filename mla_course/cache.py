"""A results cache on disk, so that rebuilding the book reuses the runs that did not change.

An entry is stored under a *key*: the SHA-256 of its description (a JSON-able
dict, e.g. a configuration and a seed) together with a fingerprint of the
code that produced it (:func:`code_fingerprint`: the source of the package,
the versions of Python and torch). Changing the configuration or any module
that computes results gives another key, so a stale entry is never read; it
just stays on disk unused (delete the folder to reclaim the space).

Entries are plain JSON (never pickle: loading a cache must not run code),
one file per key under ``<cache_dir>/results/``. A write goes to a temporary
file in the same folder, is flushed to disk, then renamed over the entry
(:func:`os.replace` is atomic), so a run killed midway leaves either the old
entry or none, never half a file. An entry that cannot be read (corrupt,
truncated by a full disk, another format) counts as missing and is rewritten.

Set ``MLA_NO_CACHE=1`` to ignore every entry and compute afresh (the fresh
results are still written, replacing the old ones).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import tempfile
from collections.abc import Callable
from pathlib import Path

import torch

from .utils import _flag, cache_dir

__all__ = ["code_fingerprint", "enabled", "entry_path", "key", "load", "memoize", "store"]

FORMAT = 1  # bump when the layout of an entry changes

# Modules that do not change results: editing them keeps the cache valid.
_NOT_RESULTS = frozenset({"plots.py", "bench.py"})

_fingerprint: str | None = None


def enabled() -> bool:
    """Whether entries may be read (``MLA_NO_CACHE`` unset or 0)."""
    return not _flag("MLA_NO_CACHE")


def code_fingerprint() -> str:
    """SHA-256 of the package source (all modules but plots and bench), Python and torch versions.

    Computed once per process: the code does not change while it runs.
    """
    global _fingerprint
    if _fingerprint is None:
        digest = hashlib.sha256()
        package = Path(__file__).parent
        for path in sorted(package.rglob("*.py")):
            if path.name in _NOT_RESULTS:
                continue
            digest.update(str(path.relative_to(package)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
        digest.update(f"python {platform.python_version()} torch {torch.__version__}".encode())
        _fingerprint = digest.hexdigest()
    return _fingerprint


def _canonical(obj) -> str:
    try:
        return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"the cache key parts must be plain JSON data (dicts, lists, str, finite numbers, "
            f"None): {err}"
        ) from None


def key(parts: dict) -> str:
    """The key of an entry described by ``parts`` (plain JSON data), for the current code."""
    if not isinstance(parts, dict):
        raise TypeError(f"parts={parts!r}: expected a dict")
    text = _canonical({"parts": parts, "code": code_fingerprint(), "format": FORMAT})
    return hashlib.sha256(text.encode()).hexdigest()


def entry_path(k: str) -> Path:
    """Where the entry of key ``k`` lives."""
    if len(k) != 64 or any(c not in "0123456789abcdef" for c in k):
        raise ValueError(f"key={k!r}: expected 64 lower-case hex digits, as key() returns")
    return cache_dir() / "results" / k[:2] / f"{k}.json"


def load(k: str):
    """The value stored under key ``k``, or ``None`` if there is none, it is unreadable,
    or the cache is disabled."""
    if not enabled():
        return None
    path = entry_path(k)
    try:
        entry = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None  # corrupt: treated as missing, overwritten by the next store
    if not isinstance(entry, dict) or entry.get("format") != FORMAT or entry.get("key") != k:
        return None
    return entry.get("value")


def store(k: str, value, parts: dict | None = None) -> Path:
    """Write ``value`` (plain JSON data) under key ``k``, atomically; return the entry's path.

    ``parts``, if given, is stored alongside for whoever inspects the folder.
    """
    path = entry_path(k)
    path.parent.mkdir(parents=True, exist_ok=True)
    entry = {"format": FORMAT, "key": k, "parts": parts, "value": value}
    text = json.dumps(entry)  # fails before anything is written if value is not JSON data
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{k[:8]}-", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic: readers see the old entry or the new one
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def memoize(parts: dict, compute: Callable[[], object]):
    """``load(key(parts))`` if there is an entry, else ``compute()``, stored then returned."""
    k = key(parts)
    value = load(k)
    if value is None:
        value = compute()
        store(k, value, parts)
    return value
