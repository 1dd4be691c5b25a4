"""Test settings: quick mode, the local MNIST mirror, a private cache folder."""

import functools
import http.server
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_MIRROR = ROOT.parent / "shared" / "data" / "mnist"


def pytest_configure(config):
    from mla_course.utils import pin_float32_precision

    pin_float32_precision()  # full IEEE float32, no TF32, whatever the machine's image says
    os.environ.setdefault("MLA_QUICK", "1")
    os.environ.setdefault("MPLBACKEND", "agg")
    if "MLA_DATA_DIR" not in os.environ and SHARED_MIRROR.is_dir():
        os.environ["MLA_DATA_DIR"] = str(SHARED_MIRROR)


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (``pytest -n 2 --dist loadgroup``), the tests that read the built
    book share one worker: the book is built once, and never by two builds at a time (a
    build writes into docs/)."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        if "built_docs" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("book"))


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
def site_socket():
    """A port of 127.0.0.1 reserved before the book is built: the site's own address.

    The quick build takes ``http://127.0.0.1:<port>/`` as its ``MLA_SITE_URL`` (so its
    notebooks install the package from there), and ``served_site`` serves it on that port.
    A free port, or ``MLA_TEST_SITE_PORT``: the port a book given by ``MLA_BUILT_HTML`` was
    built for (``MLA_SITE_URL=http://127.0.0.1:<port>/``).
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", int(os.environ.get("MLA_TEST_SITE_PORT", "0"))))
    yield sock
    sock.close()


@pytest.fixture(scope="session")
def built_docs(tmp_path_factory, site_socket) -> Path:
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
    site_url = f"http://127.0.0.1:{site_socket.getsockname()[1]}/"
    env = {**os.environ, "MLA_QUICK": "1", "MPLBACKEND": "agg", "MLA_SITE_URL": site_url}
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


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


@pytest.fixture(scope="session")
def served_site(built_docs, site_socket) -> str:
    """The built book served over http on the reserved port of 127.0.0.1; its address."""
    handler = functools.partial(_QuietHandler, directory=str(built_docs))
    server = http.server.ThreadingHTTPServer(
        site_socket.getsockname(), handler, bind_and_activate=False
    )
    server.socket.close()
    server.socket = site_socket
    server.server_activate()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{site_socket.getsockname()[1]}/"
    server.shutdown()
    thread.join(timeout=10)
