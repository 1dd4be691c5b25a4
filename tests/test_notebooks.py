"""The notebooks a reader downloads from the book run top to bottom (in quick mode).

Each gallery page's ``.ipynb`` is taken from the built site (``built_docs``) and executed
by nbclient in a fresh ``python3`` kernel of this environment, with ``MLA_QUICK=1`` and a
temporary working folder, as a reader would run it after downloading it.
"""

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "gallery").rglob("plot_*.py"))

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_downloaded_notebook_runs_top_to_bottom(script, built_docs, tmp_path):
    found = sorted(built_docs.glob(f"_downloads/*/{script.stem}.ipynb"))
    assert found, f"the built book offers no {script.stem}.ipynb"
    nb = nbformat.read(found[0], as_version=4)
    assert sum(cell.cell_type == "code" for cell in nb.cells) >= 2, "the notebook has no code"
    # The notebook's own backend (inline), as in Jupyter: no MPLBACKEND from the test run.
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["MLA_QUICK"] = "1"
    client = NotebookClient(
        nb,
        kernel_name="python3",
        timeout=300,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute(env=env)  # raises CellExecutionError on a failing cell
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [out for out in outputs if out.output_type == "error"]
    assert any("image/png" in out.get("data", {}) for out in outputs), "no figure was drawn"


def test_every_download_installs_the_wheel_it_was_built_with_by_its_hash(built_docs):
    """Probe finding 7: the install lines pin the site's wheel by its sha256 (pip checks it)."""
    import hashlib
    import re

    wheels = sorted(built_docs.glob("_static/wheels/mla_course-*.whl"))
    if not wheels:
        pytest.skip("this build was made without a site address: no wheel, no install line")
    digest = hashlib.sha256(wheels[0].read_bytes()).hexdigest()
    downloads = sorted(built_docs.glob("_downloads/*/plot_*.ipynb"))
    downloads += sorted(built_docs.glob("_downloads/*/plot_*.py"))
    assert downloads
    for path in downloads:
        pins = re.findall(r"mla_course-[^\s\"'#]+\.whl#sha256=([0-9a-f]{64})", path.read_text())
        assert pins and set(pins) == {digest}, path.name
