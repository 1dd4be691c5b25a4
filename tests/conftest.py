"""Test settings: quick mode, the local MNIST mirror, a private cache folder."""

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_MIRROR = ROOT.parent / "shared" / "data" / "mnist"


def pytest_configure(config):
    os.environ.setdefault("MLA_QUICK", "1")
    os.environ.setdefault("MPLBACKEND", "agg")
    if "MLA_DATA_DIR" not in os.environ and SHARED_MIRROR.is_dir():
        os.environ["MLA_DATA_DIR"] = str(SHARED_MIRROR)


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Every test session gets its own cache, so no test reads a result another run left."""
    if "MLA_TEST_KEEP_CACHE" not in os.environ:
        os.environ["MLA_CACHE_DIR"] = str(tmp_path_factory.mktemp("mla_cache"))


@pytest.fixture(scope="session")
def mirror() -> Path:
    path = os.environ.get("MLA_DATA_DIR")
    if not path or not Path(path).is_dir():
        pytest.fail("MLA_DATA_DIR must name a folder holding the four MNIST files for the tests")
    return Path(path)
