"""Sphinx configuration of the mla-course book.

The gallery (``../gallery``) is executed by Sphinx-Gallery at every build, on a
GPU when there is one (``mla_course.settings.get_device``). With ``MLA_QUICK=1``
every script runs a shrunken version (``nox -s docs-quick``). The build fails on
any warning (``-W`` in the nox sessions), on any example error, and when a
gallery script was not executed.

Addresses are configured, never invented: ``MLA_REPOSITORY_URL`` (else, under GitHub
Actions, the repository the workflow runs in) gives the theme's repository button, and
``MLA_SITE_URL`` (else, under GitHub Actions, the repository's GitHub Pages address) is
``html_baseurl``. The build makes the wheel of ``mla_course`` and publishes it in the site
(``_static/wheels/``): every downloaded notebook's first cell installs it from there when
``mla_course`` is missing, and every downloaded script says the command in its first lines.
"""

import hashlib
import importlib
import os
import pkgutil
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.parse
from pathlib import Path

import torch
from sphinx_gallery.sorting import ExplicitOrder

import mla_course
from mla_course.settings import float32_matmul_precision, get_device, quick

HERE = Path(__file__).parent
ROOT = HERE.resolve().parent
sys.path.insert(0, str(HERE / "_ext"))  # the book's own extensions (exercises)


_LOOPBACK = ("127.0.0.1", "localhost", "::1")
_URL_CHARS = re.compile(r"[A-Za-z0-9._~:/%@\[\]-]+")  # no spaces, quotes, options or newlines


def _configured_url(variable: str, fallback: str) -> str:
    """The address in ``variable``, else ``fallback``: a well-formed https address (http only
    for a loopback host), or an early clear error naming the variable. It goes into install
    lines verbatim, so nothing else may pass."""
    value = os.environ.get(variable, "").strip() or fallback
    if not value:
        return value
    parts = urllib.parse.urlsplit(value)
    secure = parts.scheme == "https" or (parts.scheme == "http" and parts.hostname in _LOOPBACK)
    if not (
        _URL_CHARS.fullmatch(value)
        and secure
        and parts.hostname
        and not (parts.username or parts.query or parts.fragment)
    ):
        raise ValueError(
            f"{variable}={value!r}: expected an https:// address (http:// only for "
            f"{', '.join(_LOOPBACK)}), with no spaces, quotes, query or fragment; or leave it unset"
        )
    return value


def _github(kind: str) -> str:
    """Under GitHub Actions: the repository's address ("repository") or its Pages site."""
    repository = os.environ.get("GITHUB_REPOSITORY", "")
    if os.environ.get("GITHUB_ACTIONS") != "true" or "/" not in repository:
        return ""
    if kind == "repository":
        server = os.environ.get("GITHUB_SERVER_URL", "https://github.com").rstrip("/")
        return f"{server}/{repository}"
    owner, name = repository.split("/", 1)
    host = f"{owner.lower()}.github.io"
    return f"https://{host}/" if name.lower() == host else f"https://{host}/{name}/"


REPOSITORY_URL = _configured_url("MLA_REPOSITORY_URL", _github("repository")).rstrip("/")
SITE_URL = _configured_url("MLA_SITE_URL", _github("pages"))
SITE_URL = SITE_URL and SITE_URL.rstrip("/") + "/"
html_baseurl = SITE_URL
# The package as the build makes it (build_wheel below), published inside the site.
WHEEL = f"mla_course-{mla_course.__version__}-py3-none-any.whl"
WHEEL_URL = f"{SITE_URL}_static/wheels/{WHEEL}" if SITE_URL else ""
if WHEEL_URL:
    INSTALL = f"install it once, in a terminal:\n#     pip install {WHEEL_URL}"
elif REPOSITORY_URL:
    INSTALL = (
        f'install it once, in a terminal:\n#     pip install "mla-course @ git+{REPOSITORY_URL}"'
    )
else:
    INSTALL = "install it once from a clone of the\n# book's sources: `pip install .` in the clone."


project = "mla-course"
html_title = "Deep network training — an executable course"
author = "mla-course contributors, after the lecture by Kévin Bailly"
copyright = "2026, mla-course contributors"
release = version = mla_course.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "sphinx-mathjax-offline",  # serves MathJax from the built site: the book reads offline
    "sphinx_gallery.gen_gallery",
    "sphinxcontrib.bibtex",
    "myst_parser",
    "bench_table",  # docs/_ext: the bench-table directive of the Performance page
    "claims_page",  # docs/_ext: records every page's checked claims, writes claims.rst
    "compute_table",  # docs/_ext: records each page's training compute for the Performance page
    "exercises",  # docs/_ext: each page's exercise, generated from its solution cells
]

exclude_patterns = [
    "_build",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/**/*.ipynb",
    "auto_examples/**/*.py",
]
templates_path = ["_templates"]
html_static_path = ["_static"]
html_css_files = ["custom.css"]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
myst_enable_extensions = ["dollarmath", "colon_fence"]

html_theme = "sphinx_book_theme"
html_theme_options = {
    "use_download_button": True,
    "show_navbar_depth": 2,
    "home_page_in_toc": True,
}
if REPOSITORY_URL:  # no button, and no repository named, when none is configured
    html_theme_options |= {
        "repository_url": REPOSITORY_URL,
        "path_to_docs": "docs",
        "use_repository_button": True,
    }
# The light/dark mode a first-time reader gets (the theme logs a console error without it).
html_context = {"default_mode": "auto"}

autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "description"
autosummary_generate = True
napoleon_numpy_docstring = True
napoleon_google_docstring = False

bibtex_bibfiles = ["references.bib"]
bibtex_default_style = "plain"
bibtex_reference_style = "author_year"

nitpicky = False


def _device_line() -> str:
    device = get_device()
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine()
    )
    return (
        f"{device.type.upper()} ({name}), torch {torch.__version__}, "
        f"{os.cpu_count()} CPU cores, float32 matmul {float32_matmul_precision()}"
    )


rst_prolog = f"""
.. |build_device| replace:: {_device_line()}
.. |build_mode| replace:: {"quick mode (MLA_QUICK=1: shrunken runs)" if quick() else "full settings"}
"""

DATA_NOTE = "# Offline? Set MLA_DATA_DIR to a folder holding the four MNIST files."
if WHEEL_URL:
    # IPython runs a line magic inside a block: %pip installs into this kernel's Python.
    FIRST_NOTEBOOK_CELL = f"""\
# This notebook needs the mla_course package: if it is missing, this cell installs
# it from the book's site, the version the book was built with.
try:
    import mla_course
except ImportError:
    import importlib.util

    if importlib.util.find_spec("torch"):  # Colab, or a machine with its own torch: keep it
        %pip install --quiet --no-deps {WHEEL_URL}
        %pip install --quiet numpy matplotlib tqdm safetensors scipy platformdirs
    else:
        %pip install --quiet {WHEEL_URL}
    import importlib

    importlib.invalidate_caches()
    import mla_course
{DATA_NOTE}"""
else:
    FIRST_NOTEBOOK_CELL = f"""\
# This notebook needs the mla_course package: {INSTALL}
{DATA_NOTE}
import mla_course"""
# The same command, in the first lines of every downloaded script (add_install_header).
PY_HEADER = f"""\
# This script needs the mla_course package: {INSTALL}
{DATA_NOTE}
"""

sphinx_gallery_conf = {
    "examples_dirs": "../gallery",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",  # every plot_*.py is executed
    "subsection_order": ExplicitOrder(
        [
            "../gallery/01_architecture",
            "../gallery/02_optimisation",
            "../gallery/03_regularisation",
        ]
    ),
    "within_subsection_order": "FileNameSortKey",
    "run_stale_examples": True,  # never reuse outputs of another mode: the results cache makes reruns fast
    "abort_on_example_error": False,
    "only_warn_on_example_error": False,  # an example error fails the build
    "capture_repr": ("_repr_html_", "__repr__"),
    "image_srcset": ["2x"],
    "doc_module": ("mla_course",),
    "backreferences_dir": "gen_modules/backreferences",
    "remove_config_comments": True,
    "download_all_examples": True,  # a zip of every script, and one of every notebook
    "recommender": {"enable": True, "n_examples": 3, "rubric_header": "Related pages"},
    "first_notebook_cell": FIRST_NOTEBOOK_CELL,
    "reset_modules": ("matplotlib",),
    # Pages run in parallel, one process per usable core; joblib gives each process
    # cores // processes = 1 torch thread unless OMP_NUM_THREADS says otherwise. The
    # results cache and the data preparation are safe with several processes at once.
    "parallel": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1,
}


def check_every_example_ran(app, exception):
    """Fail the build if a gallery script was not executed (skipped, filtered out or broken)."""
    if exception is not None or app.builder.name != "html":
        return
    conf = app.config.sphinx_gallery_conf
    ran = {Path(p).resolve() for p in conf["passing_examples"]}
    scripts = {p.resolve() for p in (HERE / "../gallery").rglob("plot_*.py")}
    missing = sorted(str(p.relative_to((HERE / "..").resolve())) for p in scripts - ran)
    if missing:
        raise RuntimeError(f"these gallery scripts were not executed: {missing}")


def _public_names(module_name: str) -> list[str]:
    """The module and the public functions and classes it defines, fully qualified."""
    module = importlib.import_module(module_name)
    names = [
        f"{module_name}.{attr}"
        for attr, obj in vars(module).items()
        if not attr.startswith("_")
        and callable(obj)
        and getattr(obj, "__module__", None) == module_name
    ]
    return [module_name, *names]


def offline_execution_times(app, docname, source):
    """Keep the execution-time pages readable offline: drop the scripts they fetch from CDNs.

    Sphinx-Gallery makes their table sortable with jQuery and DataTables loaded from the
    internet; offline, the browser reports failed loads and script errors. The table stays.
    """
    if docname.rsplit("/", 1)[-1] != "sg_execution_times":
        return
    text = source[0]
    text = re.sub(r"\n *<(link|script) [^>]*https://[^>]*>(</script>)?", "", text)
    text = re.sub(r"\n *<script[^>]*>\s*\$\(document\).*?</script>", "", text, flags=re.DOTALL)
    source[0] = text


def _reexported(module_name: str) -> dict[str, str]:
    """The names of ``__all__`` that the module imports from another one: name -> its home."""
    module = importlib.import_module(module_name)
    homes = {}
    for name in getattr(module, "__all__", ()):
        home = getattr(getattr(module, name), "__module__", None)
        if isinstance(home, str) and home != module_name and home.startswith("mla_course."):
            homes[name] = home
    return homes


def write_api_pages(app):
    """One page per module of ``mla_course`` (generated, so a new module is documented at once)."""
    out = HERE / "api"
    out.mkdir(exist_ok=True)
    modules = sorted(
        m.name for m in pkgutil.iter_modules(mla_course.__path__) if not m.name.startswith("_")
    )
    for old in out.glob("*.rst"):
        if old.stem not in {f"mla_course.{m}" for m in modules}:
            old.unlink()
    for name in modules:
        full = f"mla_course.{name}"
        # Sphinx-Gallery records the functions and classes a page uses, not the module:
        # the mini-gallery lists the pages that use any of them.
        # A name re-exported from another module is documented once, in its home module:
        # a second entry would take the source's "[docs]" link to an anchor that is not there.
        others = _reexported(full)
        automodule = f".. automodule:: {full}\n"
        if others:
            automodule += f"   :exclude-members: {', '.join(sorted(others))}\n\n"
            automodule += "Also importable from here: " + ", ".join(
                f":obj:`~{home}.{n}`" for n, home in sorted(others.items())
            )
            automodule += ".\n"
        text = (
            f"{full}\n{'=' * len(full)}\n\n{automodule}\n"
            f".. minigallery:: {' '.join(_public_names(full))}\n"
            f"   :add-heading: Pages of the book that use {full}\n"
        )
        page = out / f"{full}.rst"
        if not page.exists() or page.read_text() != text:
            page.write_text(text)


def build_wheel(app):
    """Make the wheel of ``mla_course`` (``pip wheel``) and publish it at ``_static/wheels/``.

    Built from a copy of the package's sources, so that builds running side by side never
    share setuptools' ``build/`` folder.
    """
    if app.builder.format != "html":
        return
    dest = Path(app.outdir) / "_static" / "wheels"
    with tempfile.TemporaryDirectory(prefix="mla_wheel_") as tmp:
        src, dist = Path(tmp) / "src", Path(tmp) / "dist"
        src.mkdir()
        for name in ("pyproject.toml", "README.md", "LICENSE"):
            shutil.copy2(ROOT / name, src / name)
        shutil.copytree(
            ROOT / "mla_course", src / "mla_course", ignore=shutil.ignore_patterns("__pycache__")
        )
        done = subprocess.run(
            [
                *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
                *("--disable-pip-version-check", "--quiet", "--wheel-dir", str(dist), str(src)),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"pip wheel failed on mla_course:\n{done.stdout}\n{done.stderr}")
        built = [p.name for p in dist.glob("*.whl")]
        if built != [WHEEL]:
            raise RuntimeError(
                f"pip wheel made {built}, the book links {WHEEL}: pyproject.toml's version "
                f"and mla_course.__version__ ({mla_course.__version__}) must agree"
            )
        dest.mkdir(parents=True, exist_ok=True)
        for old in dest.glob("mla_course-*.whl"):
            old.unlink()
        shutil.copy2(dist / WHEEL, dest / WHEEL)
    pin_wheel(app, hashlib.sha256((dest / WHEEL).read_bytes()).hexdigest())


def pin_wheel(app, digest: str) -> None:
    """Pin the install lines to the wheel just built (pip checks ``#sha256=``), so that a
    reader installs exactly the package this book was built with."""
    global PY_HEADER
    if not WHEEL_URL:
        return
    pinned = f"{WHEEL_URL}#sha256={digest}"
    conf = app.config.sphinx_gallery_conf  # read by Sphinx-Gallery after this hook
    conf["first_notebook_cell"] = FIRST_NOTEBOOK_CELL.replace(WHEEL_URL, pinned)
    PY_HEADER = PY_HEADER.replace(WHEEL_URL, pinned)


def add_install_header(app):
    """Every ``.py`` download of the gallery starts with the command that installs the package.

    Sphinx-Gallery copies each script beside its page (the file ``:download:`` serves) and
    has no first-lines option for scripts, as it has ``first_notebook_cell`` for notebooks;
    its zip of the page's downloads is remade with the headed script.
    """
    from sphinx_gallery.downloads import python_zip
    from sphinx_gallery.gen_rst import zip_files

    for script in (HERE / "auto_examples").rglob("plot_*.py"):
        text = script.read_text(encoding="utf-8")
        if not text.startswith(PY_HEADER):
            script.write_text(PY_HEADER + text, encoding="utf-8")
        archive = script.with_suffix(".zip")
        if archive.is_file():
            members = [str(p) for p in (script, script.with_suffix(".ipynb")) if p.is_file()]
            zip_files(members, archive, script.parent)
    gallery = HERE / "auto_examples"  # the gallery-wide zip of scripts, made before the headers
    scripts = sorted(str(p) for p in gallery.rglob("plot_*.py"))
    if (gallery / "auto_examples_python.zip").is_file():
        python_zip(scripts, str(gallery), ".py")


def setup(app):
    app.connect("builder-inited", build_wheel, priority=400)  # before the gallery runs
    # After Sphinx-Gallery (priority 500) and the exercises (550) wrote the scripts.
    app.connect("builder-inited", add_install_header, priority=600)
    app.connect("builder-inited", write_api_pages)
    app.connect("source-read", offline_execution_times)
    app.connect("build-finished", check_every_example_ran)
