"""Sessions of the mla-course project: ``nox -s tests``, ``nox -s docs``, ``nox -l`` for the list.

Dependencies are declared once, in the dependency groups of ``pyproject.toml``.
"""

import json
import os
import shutil
import socket
from pathlib import Path

import nox

nox.needs_version = ">=2024.4.15"
nox.options.sessions = ["lint", "tests"]
nox.options.reuse_existing_virtualenvs = True  # torch is large: install it once per session

ROOT = Path(__file__).parent
# The book's networks are small: one thread per process is as fast, and several
# processes with two threads each on a small machine slow down by an order of magnitude.
THREADS = {"OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
GENERATED = ["docs/_build", "docs/auto_examples", "docs/gen_modules", "docs/api"]


def install(session: nox.Session, *groups: str, package: bool = True) -> None:
    """Install dependency groups of pyproject.toml, and the package itself unless told not to."""
    deps = [d for g in groups for d in nox.project.dependency_groups(PYPROJECT, g)]
    session.install(*(["-e", "."] if package else []), *deps)


def build_docs(session: nox.Session, *, quick: bool, site_url: str | None = None) -> None:
    """sphinx-build the book; ``site_url`` overrides ``MLA_SITE_URL`` (docs/conf.py)."""
    for path in GENERATED:
        shutil.rmtree(ROOT / path, ignore_errors=True)
    env = {"MLA_QUICK": "1" if quick else "0", "MPLBACKEND": "agg", **THREADS}
    if site_url:
        env["MLA_SITE_URL"] = site_url
    session.run(
        "sphinx-build",
        "-W",
        "--keep-going",
        "-b",
        "html",
        "docs",
        "docs/_build/html",
        *session.posargs,
        env=env,
    )
    session.log(f"Built the book: open {ROOT / 'docs/_build/html/index.html'}")


@nox.session
def tests(session: nox.Session) -> None:
    """Run the test suite: the unit tests, then the book's tests on one build of it.

    Without ``MLA_BUILT_HTML``, the book's tests build the quick book once (every page
    runs in it) and read its outputs; the notebook tests then run the notebooks that build
    wrote: each page runs twice. ``MLA_BUILT_HTML=docs/_build/html`` (``.ci/run``, after
    ``nox -s docs``) reads that build instead of building one; ``MLA_TEST_SITE_PORT``
    names the port it was built for (``MLA_SITE_URL``). Arguments after ``--`` go to
    pytest (``-m "not slow"``: the unit tests alone).
    """
    install(session, "test", "docs")
    env = {"MPLBACKEND": "agg", **THREADS}
    if os.environ.get("MLA_BUILT_HTML"):
        env["MLA_SCREENSHOTS"] = str(ROOT / "docs/_build/screenshots")
    session.run("pytest", *session.posargs, env=env)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the book with every gallery script at full settings (on a GPU when present)."""
    install(session, "docs")
    build_docs(session, quick=False)


@nox.session(name="docs-quick")
def docs_quick(session: nox.Session) -> None:
    """Build the book with every script in quick mode (minutes on a CPU)."""
    install(session, "docs")
    build_docs(session, quick=True)


@nox.session(name="docs-check")
def docs_check(session: nox.Session) -> None:
    """Build the quick book, then check it as a reader meets it, in headless Chromium.

    Every page opened (no console error, every image loaded, every internal link resolved,
    no code wider than its box), the downloads' notebooks run, one of them in a fresh
    environment that installs the package from the served site; screenshots in
    docs/_build/screenshots. Needs Debian's ``chromium``. ``MLA_BUILT_HTML=docs/_build/html``
    checks an existing build instead, quick or full (the fresh-environment test then runs
    only if that build was made for ``http://127.0.0.1:<MLA_TEST_SITE_PORT>/``).
    """
    install(session, "docs", "test")
    html = os.environ.get("MLA_BUILT_HTML")
    extra = {}
    if not html:
        # Built for the local address it is served at, so its notebooks install from it.
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        build_docs(session, quick=True, site_url=f"http://127.0.0.1:{port}/")
        html = "docs/_build/html"
        extra["MLA_TEST_SITE_PORT"] = str(port)
    shots = ROOT / "docs/_build/screenshots"
    session.run(
        "pytest",
        "tests/test_docs.py",
        "tests/test_browser.py",
        "tests/test_notebooks.py",
        "tests/test_reader.py",
        env={
            **extra,
            "MLA_BUILT_HTML": html,
            "MLA_SCREENSHOTS": str(shots),
            "MLA_REQUIRE_BROWSER": "1",
            "MLA_TEST_KEEP_CACHE": "1",  # the notebooks reuse the results the build cached
            "MPLBACKEND": "agg",
        },
    )
    report = json.loads((shots / "report.json").read_text())
    session.log(
        f"Checked {report['pages']} pages ({report['gallery_pages']} gallery pages), "
        f"{report['images']} images, {report['internal_links']} internal links "
        f"({report['distinct_internal_targets']} distinct); screenshots in {shots}"
    )


@nox.session
def lint(session: nox.Session) -> None:
    """Check the code with ruff, and the GitHub workflows with actionlint."""
    install(session, "lint", package=False)
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # Every workflow of .github/workflows; settings in .github/actionlint.yaml.
    session.run("actionlint", "-no-color")


@nox.session
def bench(session: nox.Session) -> None:
    """Time the fast path against the PyTorch tutorial's way; write docs/_static/bench/latest.json."""
    install(session)
    session.run(
        "python",
        "-m",
        "mla_course.bench",
        *session.posargs,
        env={
            "MLA_NO_CACHE": "1",
            **THREADS,
            **({"MLA_QUICK": os.environ["MLA_QUICK"]} if "MLA_QUICK" in os.environ else {}),
        },
    )


@nox.session(python=False)
def gpu(session: nox.Session) -> None:
    """Prepare the offline GPU run: wheels/ (the docs group and pytest, for Python 3.12) and
    gpu-data/mnist, to carry to the lent host; there, ``tools/gpu-run.sh`` (see README)."""
    groups = PYPROJECT["dependency-groups"]
    reqs = [*groups["docs"], *(r for r in groups["test"] if r.startswith("pytest"))]
    session.run("bash", str(ROOT.parent / "shared/tools/docs-wheels.sh"), "wheels", *reqs)
    mnist = Path(os.environ.get("MLA_DATA_DIR", ROOT.parent / "shared/data/mnist"))
    dest = ROOT / "gpu-data/mnist"
    dest.mkdir(parents=True, exist_ok=True)
    for f in mnist.glob("*-ubyte*"):
        shutil.copyfile(f, dest / f.name)
    session.log("Carry wheels/ and gpu-data/ to the GPU host; run tools/gpu-run.sh there.")
