"""The reader's side: exercises made from their solutions, and downloads that install themselves.

- ``strip_solutions`` (docs/_ext/exercises.py) turns a gallery page into its exercise;
  the unit tests hold it to the rules page authors follow (/work/agents/EXERCISES.md).
- A small Sphinx-Gallery book built with the extension offers each exercise download,
  linked under the page's ``Exercises`` heading, with its label.
- As a reader on another machine: the quick book is served on 127.0.0.1 (the address it
  was built for, ``MLA_SITE_URL``), one notebook is downloaded over http and run by
  nbclient in a fresh virtual environment that has no ``mla_course``; its first cell must
  install the package from the served site, and the notebook must run to the end.
"""

import importlib.util
import json
import os
import re
import subprocess
import sys
import sysconfig
import textwrap
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "gallery").rglob("plot_*.py"))

_spec = importlib.util.spec_from_file_location("exercises", ROOT / "docs" / "_ext" / "exercises.py")
exercises = sys.modules.setdefault("exercises", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(exercises)

PAGE = textwrap.dedent('''\
    """
    A small page
    ============

    What the page asks.
    """

    # %%
    # Setup
    # -----
    x = 2
    print(x)

    # %%
    # Exercises
    # ---------
    #
    # **Exercise 1.** Predict ``x ** 2``, then compute it.
    base = x

    # %% [solution]
    # **Solution.** Four.
    square = base**2
    print(square)

    # %% [solution]
    # The rest of the answer.
    cube = square * base

    # %%
    # **Exercise 2.** Print ``x`` again.
    print(x)

    # sphinx_gallery_thumbnail_number = 1
''')


def test_no_file_of_the_project_names_an_invented_repository():
    """Addresses come from configuration (docs/conf.py): none is typed into a file."""
    invented = "github.com/" + "mla-course"  # the repository that never existed
    files = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert len(files) > 20, files
    named = [
        f
        for f in files
        if (ROOT / f).is_file() and invented in (ROOT / f).read_text(errors="ignore")
    ]
    assert not named, f"these files name {invented}: {named}"


_READ_CONF = textwrap.dedent("""\
    import json, os, runpy, sys
    out = {}
    for name, env in json.loads(sys.argv[1]).items():
        for var in ("MLA_SITE_URL", "MLA_REPOSITORY_URL", "GITHUB_ACTIONS", "GITHUB_REPOSITORY",
                    "GITHUB_SERVER_URL"):
            os.environ.pop(var, None)
        os.environ.update(env)
        try:
            conf = runpy.run_path("conf.py")
        except ValueError as err:
            out[name] = {"error": str(err)}
            continue
        out[name] = {
            "baseurl": conf["html_baseurl"],
            "theme": conf["html_theme_options"],
            "first_cell": conf["sphinx_gallery_conf"]["first_notebook_cell"],
            "py_header": conf["PY_HEADER"],
        }
    print(json.dumps(out))
""")


def test_addresses_come_from_configuration_or_github_actions_never_invented():
    cases = {
        "none": {},
        "actions": {
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": "Someone/deep-book",
            "GITHUB_SERVER_URL": "https://github.example",
        },
        "configured": {
            "MLA_SITE_URL": "https://book.example/c5",
            "MLA_REPOSITORY_URL": "https://git.example/c5/",
            "GITHUB_ACTIONS": "true",
            "GITHUB_REPOSITORY": "Someone/deep-book",
        },
        "bad": {"MLA_SITE_URL": "book.example"},
        "plain http": {"MLA_SITE_URL": "http://book.example/"},
        "pip option": {"MLA_SITE_URL": "https://book.example/ --index-url https://evil.example"},
        "quote": {"MLA_REPOSITORY_URL": 'https://git.example/c5"; rm -rf ~; "'},
        "newline": {"MLA_SITE_URL": "https://book.example/\nimport os"},
        "loopback": {"MLA_SITE_URL": "http://127.0.0.1:8765/"},
    }
    done = subprocess.run(
        [sys.executable, "-c", _READ_CONF, json.dumps(cases)],
        cwd=ROOT / "docs",
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "MLA_QUICK": "1"},
    )
    got = json.loads(done.stdout.splitlines()[-1])
    wheel = "_static/wheels/mla_course-"
    none = got["none"]
    assert none["baseurl"] == "" and "repository_url" not in none["theme"]
    assert not none["theme"].get("use_repository_button")
    for text in (none["first_cell"], none["py_header"]):
        assert "http" not in text and "pip install ." in text  # from a clone
    actions = got["actions"]
    assert actions["baseurl"] == "https://someone.github.io/deep-book/"
    assert actions["theme"]["repository_url"] == "https://github.example/Someone/deep-book"
    assert (
        f"%pip install --quiet https://someone.github.io/deep-book/{wheel}" in actions["first_cell"]
    )
    assert f"pip install https://someone.github.io/deep-book/{wheel}" in actions["py_header"]
    configured = got["configured"]
    assert configured["baseurl"] == "https://book.example/c5/"
    assert configured["theme"]["repository_url"] == "https://git.example/c5"
    assert f"https://book.example/c5/{wheel}" in configured["first_cell"]
    assert "MLA_SITE_URL='book.example'" in got["bad"]["error"]
    for case in ("plain http", "pip option", "quote", "newline"):  # probe finding 7
        assert "expected an https:// address" in got[case]["error"], case
    assert got["loopback"]["baseurl"] == "http://127.0.0.1:8765/"


def test_every_gallery_page_has_an_exercise_made_from_its_solution():
    """Issue 12: each lecture section (page) ends with at least one exercise."""
    without = [s.name for s in SCRIPTS if not exercises.has_solutions(s.read_text())]
    assert not without, f"no '{exercises.SOLUTION_MARKER}' cell (see EXERCISES.md): {without}"
    for script in SCRIPTS:  # and every one makes a valid exercise
        exercises.strip_solutions(script.read_text(), str(script.relative_to(ROOT)))


# ---------------------------------------------------------------------------------------
# The stripping function


def test_strip_solutions_replaces_each_run_of_solution_cells_by_one_placeholder():
    out = exercises.strip_solutions(PAGE, "page.py")
    assert out.count(exercises.PLACEHOLDER) == 1  # two solution cells in a row: one cell
    for gone in ("square", "cube", "**Solution.**", "The rest of the answer", "[solution]"):
        assert gone not in out
    for kept in ("# Setup", "print(x)", "base = x", "**Exercise 2.**", "thumbnail_number"):
        assert kept in out
    # The placeholder is a code cell: a blank line separates it from its '# %%' header,
    # else Sphinx-Gallery would read it as the cell's text.
    assert f"# %%\n\n{exercises.PLACEHOLDER}\n" in out
    assert "A small page (exercises)\n========================\n" in out
    compile(out, "exercise", "exec")


def test_strip_solutions_keeps_a_page_cell_for_cell_around_separate_solutions():
    page = PAGE.replace(
        "# %% [solution]\n# The rest of the answer.",
        "# %%\n# **Exercise 1b.** And the cube?\n\n# %% [solution]\n# **Solution.** Eight.",
    )
    out = exercises.strip_solutions(page, "page.py")
    assert out.count(exercises.PLACEHOLDER) == 2
    assert "**Exercise 1b.**" in out and "Eight" not in out


def test_has_solutions():
    assert exercises.has_solutions(PAGE)
    assert not exercises.has_solutions(PAGE.replace("# %% [solution]", "# %%"))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s.replace("# %% [solution]", "# %%"), "no '# %% \\[solution\\]' cell"),
        (
            lambda s: s.replace("# Exercises\n# ---------", "# Tasks\n# -----"),
            "no 'Exercises' heading",
        ),
        (
            lambda s: s.replace(
                "# Setup\n# -----\n",
                "# Setup\n# -----\n\n# %% [solution]\n# **Solution.** y\ny = 1\n\n# %%\n",
            ),
            "before the 'Exercises' heading",
        ),
        (lambda s: s.replace("# **Solution.** Four.", "# Four."), r"must start with '\*\*Solution"),
        (
            lambda s: s.replace("print(x)\n\n# sphinx", "print(cube)\n\n# sphinx"),
            "uses cube, defined only in a solution",
        ),
    ],
    ids=[
        "no-solution",
        "no-heading",
        "solution-before-heading",
        "no-solution-label",
        "name-from-solution",
    ],
)
def test_strip_solutions_names_the_page_and_the_rule_broken(change, message):
    with pytest.raises(exercises.ExerciseError, match=message) as err:
        exercises.strip_solutions(change(PAGE), "gallery/plot_99.py")
    assert "gallery/plot_99.py" in str(err.value)


def test_a_solution_cell_header_is_dropped_by_sphinx_gallery_like_any_cell_header(tmp_path):
    """The marker is a plain '# %%' line to Sphinx-Gallery: the page shows the solution."""
    from sphinx_gallery.py_source_parser import split_code_and_text_blocks

    page = tmp_path / "plot_99.py"
    page.write_text(PAGE)
    _, blocks = split_code_and_text_blocks(page)
    texts = [b.content for b in blocks if b.type == "text"]
    codes = [b.content for b in blocks if b.type == "code"]
    assert any(t.startswith("**Solution.** Four.") for t in texts)
    assert any("square = base**2" in c for c in codes)
    assert not any("[solution]" in b.content for b in blocks)
    exercise = tmp_path / "plot_99_exercise.py"
    exercise.write_text(exercises.strip_solutions(PAGE))
    _, blocks = split_code_and_text_blocks(exercise)
    assert ("code", exercises.PLACEHOLDER) in [(b.type, b.content.strip()) for b in blocks]


# ---------------------------------------------------------------------------------------
# The extension, in a small Sphinx-Gallery book


@pytest.mark.slow
def test_a_small_book_offers_the_exercise_downloads_under_its_heading(tmp_path):
    (tmp_path / "gallery").mkdir()
    (tmp_path / "gallery" / "README.rst").write_text("Pages\n=====\n")
    (tmp_path / "gallery" / "plot_99_small.py").write_text(PAGE)
    (tmp_path / "gallery" / "plot_98_plain.py").write_text('"""\nPlain\n=====\n"""\nx = 1\n')
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "conf.py").write_text(
        textwrap.dedent(f"""\
            import sys
            sys.path.insert(0, {str(ROOT / "docs" / "_ext")!r})
            project = "small"
            extensions = ["sphinx_gallery.gen_gallery", "exercises"]
            exclude_patterns = ["_build", "auto_examples/*.py", "auto_examples/*.ipynb"]
            sphinx_gallery_conf = {{
                "examples_dirs": "../gallery", "gallery_dirs": "auto_examples",
                "filename_pattern": "/plot_", "first_notebook_cell": "# FIRST CELL",
                "remove_config_comments": True,
            }}
        """)
    )
    (docs / "index.rst").write_text(
        "Small\n=====\n\n.. toctree::\n\n   auto_examples/index\n\n"
        "Try :ref:`exercises-plot_99_small`.\n"
    )
    out = docs / "_build" / "html"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(docs),
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "MPLBACKEND": "agg"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    html = (out / "auto_examples" / "plot_99_small.html").read_text()
    heading = html.index(">Exercises<")
    assert 'id="exercises-plot-99-small"' in html[:heading]  # the label, just before
    for ext in (".ipynb", ".py"):
        link = re.search(rf'href="(\.\./_downloads/[0-9a-f]+/plot_99_small_exercise{ext})"', html)
        assert link and link.start() > heading, f"no {ext} exercise download under the heading"
        assert (out / "auto_examples" / link[1]).resolve().is_file()
    assert (
        "auto_examples/plot_99_small.html#exercises-plot-99-small"
        in (out / "index.html").read_text()
    )
    assert (
        "plot_98_plain_exercise" not in (out / "auto_examples" / "plot_98_plain.html").read_text()
    )
    nb = nbformat.read(next(out.glob("_downloads/*/plot_99_small_exercise.ipynb")), as_version=4)
    sources = [c.source for c in nb.cells]
    assert sources[0] == "# FIRST CELL"  # the same first cell as the page's notebook
    assert exercises.PLACEHOLDER in sources and not any("square" in s for s in sources)
    assert not any("thumbnail_number" in s for s in sources)  # config comments removed


# ---------------------------------------------------------------------------------------
# A reader on another machine


def _reused_site_packages(dest: Path) -> Path:
    """This environment's installed packages but ``mla_course``, as links in one folder.

    A fresh environment sees them through a ``.pth`` file: torch is reused (no download of
    gigabytes), while ``mla_course`` (here an editable install) stays out of reach.
    """
    dest.mkdir()
    paths = {Path(sysconfig.get_paths()[k]) for k in ("purelib", "platlib")}
    for site in paths:
        for entry in site.iterdir():
            skip = entry.name.startswith(("mla_course", "__editable__", "_mla_course"))
            if skip or entry.suffix == ".pth" or (dest / entry.name).exists():
                continue
            (dest / entry.name).symlink_to(entry)
    return dest


# A process of the reader's machine: nothing of this one's import path (and the commands
# run in a temporary folder, away from the sources: Python imports from its working folder).
def _reader_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "MPLBACKEND"}}


def _ask(python: Path, code: str) -> str:
    """What ``code`` prints in the reader's environment, run away from the sources."""
    done = subprocess.run(
        [python, "-c", code],
        check=True,
        capture_output=True,
        text=True,
        env=_reader_env(),
        cwd=python.parents[2],  # the venv's parent folder: no mla_course/ beside it
    )
    return done.stdout.strip()


def _fresh_env(tmp_path: Path) -> Path:
    """A new virtual environment without mla_course; torch, pip, ipykernel reused."""
    env = tmp_path / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env)], check=True)
    python = env / "bin" / "python"
    site = Path(_ask(python, "import sysconfig; print(sysconfig.get_paths()['purelib'])"))
    reused = _reused_site_packages(tmp_path / "reused")
    (site / "_mla_reader_reused.pth").write_text(f"{reused}\n")
    return python


def _http_get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200, f"{url}: HTTP {response.status}"
        return response.read()


@pytest.mark.slow
def test_a_downloaded_notebook_installs_the_package_from_the_site_and_runs(
    served_site, tmp_path, monkeypatch
):
    page = "auto_examples/01_architecture/plot_03_question1_mnist.html"
    html = _http_get(served_site + page).decode()
    href = re.search(r'href="([^"]*/plot_03_question1_mnist\.ipynb)"', html)
    assert href, f"{page} offers no notebook download"
    url = urllib.request.urljoin(served_site + page, href[1])
    nb = nbformat.reads(_http_get(url).decode(), as_version=4)
    first = nb.cells[0].source
    if f"%pip install --quiet {served_site}_static/wheels/" not in first:
        if os.environ.get("MLA_BUILT_HTML"):
            pytest.skip(f"the given build was not made for {served_site} (MLA_SITE_URL)")
        pytest.fail(f"the notebook's first cell does not install from {served_site}:\n{first}")

    python = _fresh_env(tmp_path)
    absent = subprocess.run(
        [python, "-c", "import mla_course"],
        capture_output=True,
        check=False,
        env=_reader_env(),
        cwd=tmp_path,
    )
    assert absent.returncode != 0, "the fresh environment already has mla_course"

    kernels = tmp_path / "jupyter" / "kernels" / "mla-reader"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(
        json.dumps(
            {
                "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                "display_name": "fresh reader environment",
                "language": "python",
            }
        )
    )
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    from nbclient import NotebookClient

    # Quick mode; the dependencies come from the reused packages, never from an index.
    env = _reader_env() | {"MLA_QUICK": "1", "PIP_NO_INDEX": "1"}
    work = tmp_path / "work"
    work.mkdir()
    client = NotebookClient(
        nb, kernel_name="mla-reader", timeout=600, resources={"metadata": {"path": str(work)}}
    )
    client.execute(env=env)  # raises CellExecutionError on a failing cell

    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    assert any("image/png" in out.get("data", {}) for out in outputs), "no figure was drawn"
    where = _ask(python, "import mla_course; print(mla_course.__file__)")
    assert where.startswith(str(tmp_path / "env")), f"mla_course imported from {where}"
    direct = next((tmp_path / "env").glob("lib/python*/site-packages/mla_course-*.dist-info"))
    origin = json.loads((direct / "direct_url.json").read_text())["url"]
    assert origin.startswith(served_site), f"installed from {origin}, not from the site"
