"""Every gallery page ran to its end in the build, read from the build's outputs.

No script runs again here: the build (``built_docs``: the quick book, or the one
``MLA_BUILT_HTML`` names) executed each page once, and ``docs/conf.py`` fails it when a
page raised or was not executed. These tests read what that run left: the page's rendered
outputs in the built HTML (Sphinx-Gallery's execution-times page lists unexecuted pages
too, so it proves nothing).
"""

import html as html_lib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "gallery").rglob("plot_*.py"))

pytestmark = pytest.mark.slow


def _page(built_docs: Path, script: Path) -> str:
    rel = script.relative_to(ROOT / "gallery").with_suffix(".html")
    page = built_docs / "auto_examples" / rel
    assert page.is_file(), f"the build made no page for {script.name}"
    return page.read_text()


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_page_ran_to_the_end_without_an_error_in_its_outputs(script, built_docs):
    text = _page(built_docs, script)
    assert "Total running time of the script" in text, f"{script.name} did not finish"
    outputs = re.findall(
        r'<div class="sphx-glr-script-out[^"]*">(.*?)</div>\s*</div>', text, re.DOTALL
    )
    shown = html_lib.unescape(re.sub(r"<[^>]+>", "", "".join(outputs)))
    assert "Traceback (most recent call last)" not in shown, (
        f"{script.name}: a traceback in its outputs"
    )
    # The page shows its code, not only its prose.
    n_blocks = text.count('<div class="highlight-Python notranslate">')
    assert n_blocks >= 2, f"{script.name}: {n_blocks} code blocks on its page"
