"""The quick build of the book succeeds, with every page, figure and download."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "gallery").rglob("plot_*.py"))


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
    assert "Question 1" in index and "quick mode" in index
    assert (built_docs / "references.html").is_file()
    refs = (built_docs / "references.html").read_text()
    assert "Glorot" in refs and "Ioffe" in refs
    assert list((built_docs / "api").glob("mla_course.data.html"))
    assert (built_docs / "_static" / "mathjax" / "tex-chtml.js").is_file()  # math renders offline
