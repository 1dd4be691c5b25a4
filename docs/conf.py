"""Sphinx configuration of the mla-course book.

The gallery (``../gallery``) is executed by Sphinx-Gallery at every build, on a
GPU when there is one (``mla_course.utils.get_device``). With ``MLA_QUICK=1``
every script runs a shrunken version (``nox -s docs-quick``). The build fails on
any warning (``-W`` in the nox sessions), on any example error, and when a
gallery script was not executed.
"""

import importlib
import os
import pkgutil
import platform
import re
from pathlib import Path

import torch
from sphinx_gallery.sorting import ExplicitOrder

import mla_course
from mla_course.utils import get_device, quick

HERE = Path(__file__).parent


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
    "mla_course.bench",  # the bench-table directive of the Performance page
    "mla_course.claims",  # records every page's checked claims, writes claims.rst
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
    "repository_url": "https://github.com/mla-course/mla-course",
    "path_to_docs": "docs",
    "use_repository_button": True,
    "use_download_button": True,
    "show_navbar_depth": 2,
    "home_page_in_toc": True,
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
    return f"{device.type.upper()} ({name}), torch {torch.__version__}, {os.cpu_count()} CPU cores"


rst_prolog = f"""
.. |build_device| replace:: {_device_line()}
.. |build_mode| replace:: {"quick mode (MLA_QUICK=1: shrunken runs)" if quick() else "full settings"}
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
    "download_all_examples": False,
    "first_notebook_cell": (
        "# Needs the mla_course package: pip install 'mla-course @ git+https://github.com/mla-course/mla-course'\n"
        "# Offline? Set MLA_DATA_DIR to a folder holding the four MNIST files."
    ),
    "reset_modules": ("matplotlib",),
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
        text = (
            f"{full}\n{'=' * len(full)}\n\n.. automodule:: {full}\n\n"
            f".. minigallery:: {' '.join(_public_names(full))}\n"
            f"   :add-heading: Pages of the book that use {full}\n"
        )
        page = out / f"{full}.rst"
        if not page.exists() or page.read_text() != text:
            page.write_text(text)


def setup(app):
    app.connect("builder-inited", write_api_pages)
    app.connect("source-read", offline_execution_times)
    app.connect("build-finished", check_every_example_ran)
