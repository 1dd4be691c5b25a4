"""Property-based tests of the cache loader: whatever a damaged row holds (random text,
random bytes, a truncated value), reading it gives the stored value or ``None``, never a
traceback and never a wrong number."""

import json
import sqlite3

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mla_course import cache

PARTS = {"kind": "property", "seed": 0}
GOOD = {"acc": [0.5, 0.75], "loss": [1.0, 0.5, 0.25]}
SETTINGS = settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(autouse=True)
def _fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MLA_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("MLA_NO_CACHE", raising=False)


def _overwrite(text):
    k = cache.key(PARTS)
    cache.store(k, GOOD)
    with sqlite3.connect(cache.database_path()) as db:
        db.execute("UPDATE results SET value = ? WHERE key = ?", (text, k))
    return cache.load(k)


@SETTINGS
@given(st.text(max_size=60))
def test_random_text_is_the_json_it_parses_to_or_missing(text):
    try:
        expected = json.loads(text)
    except ValueError:
        expected = None
    value = _overwrite(text)
    assert json.dumps(value) == json.dumps(expected)  # NaN included


@SETTINGS
@given(st.integers(min_value=0, max_value=len(json.dumps(GOOD)) - 1))
def test_a_truncated_value_is_missing(n):
    assert _overwrite(json.dumps(GOOD)[:n]) is None


@SETTINGS
@given(st.binary(max_size=60))
def test_random_bytes_come_back_as_stored(blob):
    k = cache.key(PARTS)
    cache.store(k, blob)
    assert cache.load(k) == blob
