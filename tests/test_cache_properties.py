"""Property-based tests of the cache loader (issue 14): whatever a damaged entry holds
(random JSON, random bytes, a truncated or altered file), reading it gives the stored
value or a clean recomputation, never a traceback and never a wrong number."""

import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mla_course import cache

PARTS = {"kind": "property", "seed": 0}
GOOD = {"acc": [0.5, 0.75, float("nan")], "loss": [1.0, 0.5, 0.25]}

pytestmark = pytest.mark.filterwarnings("error")
SETTINGS = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_data = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
    ),
    max_leaves=12,
)


def _strict(value):
    if not isinstance(value, dict) or set(value) != {"acc", "loss"}:
        raise ValueError("not a result")
    return all(isinstance(v, list) and all(isinstance(x, float) for x in v) for v in value.values())


def _same(a, b) -> bool:
    """Equal, NaN equal to NaN."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


@pytest.fixture(autouse=True)
def _fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLA_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("MLA_NO_CACHE", raising=False)
    monkeypatch.setattr(os, "fsync", lambda fd: None)  # durability is not what is tested here


def _check_recovers(content: bytes) -> None:
    """Write ``content`` as the entry; reading it gives GOOD or None, and memoize gives GOOD."""
    k = cache.key(PARTS)
    path = cache.entry_path(k)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    loaded = cache.load(k, _strict)
    assert loaded is None or _same(loaded, GOOD)  # never a wrong value
    calls = []
    value = cache.memoize(PARTS, lambda: calls.append(1) or GOOD, validate=_strict)
    assert _same(value, GOOD) and len(calls) == (0 if loaded is not None else 1)
    assert _same(cache.load(k, _strict), GOOD)  # a damaged entry was rewritten


def _good_entry() -> bytes:
    k = cache.key(PARTS)
    return cache.store(k, GOOD, PARTS).read_bytes()


@SETTINGS
@given(entry=json_data)
def test_random_json_is_never_taken_for_a_result(entry):
    _check_recovers(json.dumps(entry).encode())


@SETTINGS
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            "format": st.sampled_from([cache.FORMAT, 1, True, "2", None]),
            "key": st.sampled_from(["right", "0" * 64, None]),
            "parts": json_data,
            "sha256": st.sampled_from(["right", "0" * 64, 3]),
            "value": st.sampled_from([GOOD, {}, [], "x", {"acc": [1.0]}, {**GOOD, "x": []}])
            | json_data,
            "other": json_data,
        },
    )
)
def test_random_entries_with_the_right_fields_are_checked(fields):
    k = cache.key(PARTS)
    entry = dict(fields)
    if entry.get("key") == "right":
        entry["key"] = k
    if entry.get("sha256") == "right" and "value" in entry:
        entry["sha256"] = cache._checksum(entry["value"])
    _check_recovers(json.dumps(entry).encode())


@SETTINGS
@given(content=st.binary(max_size=300))
def test_random_bytes(content):
    _check_recovers(content)


@SETTINGS
@given(data=st.data())
def test_a_truncated_entry(data):
    text = _good_entry()
    cut = data.draw(st.integers(0, len(text)))
    _check_recovers(text[:cut])


@SETTINGS
@given(data=st.data())
def test_an_altered_byte_never_gives_a_wrong_number(data):
    text = bytearray(_good_entry())
    where = data.draw(st.integers(0, len(text) - 1))
    text[where] = data.draw(st.integers(0, 255))
    _check_recovers(bytes(text))
