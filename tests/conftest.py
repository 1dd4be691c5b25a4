"""Test settings: quick mode, the local MNIST mirror, a private cache folder."""

import os
import subprocess
import sys
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


@pytest.fixture(scope="session")
def built_docs(tmp_path_factory) -> Path:
    """The book built once in quick mode, shared by the docs, browser and notebook tests.

    ``MLA_BUILT_HTML=docs/_build/html`` reuses a build made beforehand (``nox -s docs-check``
    builds it, then runs the checks against it) instead of building again.
    """
    given = os.environ.get("MLA_BUILT_HTML")
    if given:
        path = Path(given)
        path = path if path.is_absolute() else ROOT / path
        if not (path / "index.html").is_file():
            pytest.fail(f"MLA_BUILT_HTML={given!r} holds no built book (no index.html in {path})")
        return path
    out = tmp_path_factory.mktemp("html")
    env = {**os.environ, "MLA_QUICK": "1", "MPLBACKEND": "agg"}
    done = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "docs", str(out)],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert done.returncode == 0, (
        f"the docs build failed:\n{done.stdout[-4000:]}\n{done.stderr[-8000:]}"
    )
    return out
