"""A results cache on disk, so that rebuilding the book reuses the runs that did not change.

Keys
----
An entry is stored under a *key*: the SHA-256 of its description (a JSON-able
dict, e.g. a configuration and a seed) together with a fingerprint of the
code that produced it (:func:`code_fingerprint`). The fingerprint changes with
what changes results and with nothing else: it hashes the syntax tree of every
module that computes results (not ``plots``, ``bench``, ``claims``, ``source``
or ``tables``, which draw, time, check, show or summarise them), without comments, docstrings or line numbers, and the versions of
Python, torch and torchvision. Pages pass no code into a run: everything a run
does is named in its configuration, so the description covers it. A stale entry is never
read; it just stays on disk unused (delete the folder to reclaim the space).

Entries
-------
Entries are plain JSON (never pickle: loading a cache must not run code), one
file per key under ``<cache_dir>/results/``, holding exactly the fields
``format``, ``key``, ``parts``, ``sha256`` and ``value``; ``sha256`` is the
checksum of the value. An entry is checked when it is read: an entry that is
not JSON, has another field set, another format or key, a value whose checksum
does not match, or a value the caller's ``validate`` rejects counts as missing
and is rewritten by the next :func:`store`.

A write goes to a temporary file in the same folder (named after the writing
process), is flushed to disk, then renamed over the entry (:func:`os.replace`
is atomic), so a run killed midway leaves either the old entry or none, never
half a file. The temporary files a killed writer leaves are swept by the next
process that writes: those of a process that no longer runs, and any older than
an hour. Files get the user's usual permissions (the umask).

If the cache folder cannot be written (read-only, ``MLA_CACHE_DIR`` naming a
file, disk full), one :class:`CacheWarning` names ``MLA_CACHE_DIR`` and the run
goes on without caching: a finished computation is returned, never lost.

Set ``MLA_NO_CACHE=1`` to ignore every entry and compute afresh (the fresh
results are still written, replacing the old ones).
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torchvision

from .utils import CacheDirError, CacheWarning, _flag, cache_dir, file_mode, warn_unwritable

__all__ = [
    "CacheWarning",
    "code_fingerprint",
    "enabled",
    "entry_path",
    "key",
    "load",
    "memoize",
    "store",
    "sweep",
]

FORMAT = 2  # bump when the layout of an entry changes
_FIELDS = frozenset({"format", "key", "parts", "sha256", "value"})

# Modules that do not change cached results: they draw (plots), time (bench), check
# claims about (claims), show the source of (source) or summarise into tables (tables)
# the histories after they are computed. Editing them keeps the cache valid; every
# other module, a new one included, counts.
_NOT_RESULTS = frozenset({"plots.py", "bench.py", "claims.py", "source.py", "tables.py"})

# A temporary file older than this is a leftover, whoever wrote it.
STALE_AFTER_S = 3600.0

# What a validator may raise to say "this value is not what I expect".
_INVALID = (ValueError, TypeError, KeyError, IndexError, AttributeError, ArithmeticError)

_fingerprint: str | None = None
_swept: set[str] = set()  # the cache folders already swept by this process


def enabled() -> bool:
    """Whether entries may be read (``MLA_NO_CACHE`` unset or 0)."""
    return not _flag("MLA_NO_CACHE")


# --------------------------------------------------------------------------- fingerprints
def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if (
                body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _normalised_source(source: str, name: str) -> str:
    """The syntax tree of ``source`` without docstrings, comments or positions, as text."""
    return ast.dump(_strip_docstrings(ast.parse(source, filename=name)))


def code_fingerprint() -> str:
    """SHA-256 of the package's code that computes results, Python, torch and torchvision.

    Every module but those in ``_NOT_RESULTS`` counts, by its syntax tree without
    docstrings: editing a comment, a docstring or the layout keeps the cache;
    editing code gives new keys. Computed once per process: the code does not
    change while it runs.
    """
    global _fingerprint
    if _fingerprint is None:
        _fingerprint = _source_fingerprint(Path(__file__).parent)
    return _fingerprint


def _source_fingerprint(package: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        if path.name in _NOT_RESULTS:
            continue
        name = str(path.relative_to(package))
        digest.update(name.encode() + b"\0")
        digest.update(_normalised_source(path.read_text(encoding="utf-8"), name).encode())
        digest.update(b"\0")
    versions = (
        f"python {platform.python_version()} torch {torch.__version__} "
        f"torchvision {torchvision.__version__}"
    )
    digest.update(versions.encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------- keys
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
    if not isinstance(k, str) or len(k) != 64 or any(c not in "0123456789abcdef" for c in k):
        raise ValueError(f"key={k!r}: expected 64 lower-case hex digits, as key() returns")
    return cache_dir() / "results" / k[:2] / f"{k}.json"


def _checksum(value) -> str:
    """SHA-256 of the value's JSON text (keys sorted; NaN and infinities allowed)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------- read and write
def _warn_unwritable(err: BaseException) -> None:
    warn_unwritable(err, "the results cache")


def _valid(value, validate: Callable | None) -> bool:
    if validate is None:
        return True
    try:
        return validate(value) is not False
    except _INVALID:
        return False


def load(k: str, validate: Callable | None = None):
    """The value stored under key ``k``, or ``None`` if there is none, it is damaged or not
    what ``validate`` expects, or the cache is disabled.

    ``validate(value)`` (optional) returns ``False`` or raises ``ValueError``,
    ``TypeError``, ``KeyError`` or ``IndexError`` for a value of the wrong shape;
    such an entry counts as missing.
    """
    if not enabled():
        return None
    try:
        path = entry_path(k)
    except CacheDirError as err:
        _warn_unwritable(err)
        return None
    try:
        entry = json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError, RecursionError):
        return None  # damaged: treated as missing, overwritten by the next store
    if not isinstance(entry, dict) or entry.keys() != _FIELDS:
        return None
    if type(entry["format"]) is not int or entry["format"] != FORMAT or entry["key"] != k:
        return None
    value = entry["value"]
    try:
        if value is None or entry["sha256"] != _checksum(value):
            return None
    except (ValueError, RecursionError):
        return None
    return value if _valid(value, validate) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def sweep(max_age_s: float = STALE_AFTER_S) -> int:
    """Delete the temporary files that killed writers left; return how many.

    A temporary file ``.<key>-<pid>-<random>.tmp`` is a leftover when the process
    ``pid`` no longer runs or when it is older than ``max_age_s`` seconds.
    """
    try:
        results = cache_dir() / "results"
    except CacheDirError:
        return 0
    removed = 0
    now = time.time()
    for tmp in results.glob("*/.*.tmp"):
        fields = tmp.name.split("-")
        pid = int(fields[1]) if len(fields) >= 3 and fields[1].isdigit() else None
        try:
            old = now - tmp.stat().st_mtime > max_age_s
        except OSError:
            continue
        if old or (pid is not None and not _alive(pid)):
            try:
                tmp.unlink()
                removed += 1
            except OSError:
                pass
    return removed


def store(k: str, value, parts: dict | None = None) -> Path | None:
    """Write ``value`` (plain JSON data, not ``None``) under key ``k``, atomically.

    Returns the entry's path, or ``None`` if the cache folder cannot be written
    (after one :class:`CacheWarning` naming ``MLA_CACHE_DIR``). ``parts``, if
    given, is stored alongside for whoever inspects the folder.
    """
    if value is None:
        raise TypeError("value=None cannot be cached: load() returns None for a missing entry")
    try:
        entry = {
            "format": FORMAT,
            "key": k,
            "parts": parts,
            "sha256": _checksum(value),
            "value": value,
        }
        text = json.dumps(entry)  # fails before anything is written if value is not JSON data
    except (TypeError, ValueError) as err:
        raise TypeError(f"the value to cache must be plain JSON data: {err}") from None
    try:
        path = entry_path(k)
        path.parent.mkdir(parents=True, exist_ok=True)
        root = str(path.parents[2])
        if root not in _swept:
            _swept.add(root)
            sweep()
        fd, tmp = tempfile.mkstemp(
            dir=path.parent, prefix=f".{k[:8]}-{os.getpid()}-", suffix=".tmp"
        )
    except OSError as err:  # CacheDirError, PermissionError, read-only file system...
        _warn_unwritable(err)
        return None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), file_mode())  # mkstemp makes 0600: usual rights
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)  # atomic: readers see the old entry or the new one
    except OSError as err:  # disk full, folder made read-only meanwhile...
        Path(tmp).unlink(missing_ok=True)
        _warn_unwritable(err)
        return None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def memoize(parts: dict, compute: Callable[[], object], *, validate: Callable | None = None):
    """``load(key(parts), validate)`` if there is a valid entry, else ``compute()``, stored
    (if the cache can be written) then returned."""
    k = key(parts)
    value = load(k, validate)
    if value is None:
        value = compute()
        store(k, value, parts)
    return value
