"""The build of the book succeeds, with every page, figure and download.

Run on the quick build (``built_docs``) or, with ``MLA_BUILT_HTML``, on any build made
beforehand: quick or full settings, with or without a configured site address.
"""

import json
import os
import re
import zipfile
from pathlib import Path

import pytest

import mla_course

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "gallery").rglob("plot_*.py"))
SOLUTION_MARKER = "# %% [solution]"  # docs/_ext/exercises.py
WHEEL = f"mla_course-{mla_course.__version__}-py3-none-any.whl"


@pytest.mark.slow
def test_every_gallery_page_is_built_with_its_figures_and_downloads(built_docs):
    for script in SCRIPTS:
        rel = script.relative_to(ROOT / "gallery").with_suffix(".html")
        page = built_docs / "auto_examples" / rel
        assert page.is_file(), f"no page for {script.name}"
        html = page.read_text()
        assert "Total running time of the script" in html
        images = re.findall(r'src="(\.\./\.\./_images/[^"]+\.png)"', html)
        assert images, f"{script.name}: no figure on its page"
        for src in images:
            assert (page.parent / src).resolve().stat().st_size > 1000
        for ext in (".py", ".ipynb"):
            assert f"{script.stem}{ext}" in html, f"{script.name}: no {ext} download"
            assert list(built_docs.rglob(f"_downloads/*/{script.stem}{ext}")), (
                f"{script.stem}{ext} missing"
            )


@pytest.mark.slow
def test_landing_page_api_and_references(built_docs):
    index = (built_docs / "index.html").read_text()
    assert "Question 1" in index
    modes = [m for m in ("quick mode (MLA_QUICK=1", "full settings") if m in index]
    assert len(modes) == 1, f"the landing page names no single build mode: {modes}"
    if not os.environ.get("MLA_BUILT_HTML"):  # built_docs builds in quick mode
        assert modes == ["quick mode (MLA_QUICK=1"]
    assert (built_docs / "references.html").is_file()
    refs = (built_docs / "references.html").read_text()
    assert "Glorot" in refs and "Ioffe" in refs
    assert list((built_docs / "api").glob("mla_course.data.html"))
    assert (built_docs / "_static" / "mathjax" / "tex-chtml.js").is_file()  # math renders offline


def _download(built_docs: Path, name: str) -> Path:
    found = sorted(built_docs.glob(f"_downloads/*/{name}"))
    assert found, f"the built book offers no {name}"
    return found[0]


@pytest.mark.slow
def test_the_site_carries_the_package_and_every_download_says_how_to_install_it(built_docs):
    wheel = built_docs / "_static" / "wheels" / WHEEL
    assert wheel.is_file(), f"no {WHEEL} in the site's _static/wheels"
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = archive.read(f"mla_course-{mla_course.__version__}.dist-info/METADATA")
    assert "mla_course/__init__.py" in names and "mla_course/data.py" in names
    assert f"Version: {mla_course.__version__}" in metadata.decode()
    for script in SCRIPTS:
        nb = json.loads(_download(built_docs, f"{script.stem}.ipynb").read_text())
        first = "".join(nb["cells"][0]["source"])
        assert "mla_course" in first, f"{script.stem}.ipynb: first cell names no package"
        # Built for a site: install from it; else say how to install from a clone.
        # The site's wheel, pinned by its hash, with --no-deps where torch is there already.
        urls = sorted(set(re.findall(r"https?://\S+?\.whl(?:#sha256=[0-9a-f]{64})?", first)))
        assert len(urls) <= 1 and all(f"/_static/wheels/{WHEEL}#sha256=" in u for u in urls)
        assert not urls or f"%pip install --quiet --no-deps {urls[0]}" in first
        assert urls or "pip install" in first, f"{script.stem}.ipynb: no install command"
        text = _download(built_docs, f"{script.stem}.py").read_text()
        head = text.splitlines()[:3]
        assert head[0].startswith("# This script needs the mla_course package"), head
        assert text.count("# This script needs") == 1, f"{script.stem}.py: header repeated"
        assert any("pip install" in line for line in head), head
        if urls:
            assert any(urls[0] in line for line in head), head


@pytest.mark.slow
def test_every_page_with_exercises_offers_them_under_their_heading(built_docs):
    import sys

    sys.path.insert(0, str(ROOT / "docs" / "_ext"))
    from exercises import label, strip_solutions

    with_exercises = [s for s in SCRIPTS if SOLUTION_MARKER in s.read_text()]
    for script in with_exercises:
        rel = script.relative_to(ROOT / "gallery").with_suffix(".html")
        html = (built_docs / "auto_examples" / rel).read_text()
        anchor = label(script).replace("_", "-")
        assert f'id="{anchor}"' in html, f"{script.name}: no label {label(script)}"
        after = html[html.index(f'id="{anchor}"') :]
        for ext in (".ipynb", ".py"):
            name = f"{script.stem}_exercise{ext}"
            assert re.search(rf'href="[^"]*/_downloads/[0-9a-f]+/{name}"', after), (
                f"{script.name}: no link to {name} under its Exercises heading"
            )
        exercise = _download(built_docs, f"{script.stem}_exercise.py").read_text()
        assert exercise.endswith(strip_solutions(script.read_text(), script.name))
        nb = json.loads(_download(built_docs, f"{script.stem}_exercise.ipynb").read_text())
        codes = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
        assert "# Write your code here." in codes
