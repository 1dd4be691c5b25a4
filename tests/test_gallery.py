"""Every gallery script runs from a fresh process in quick mode, as a reader would run it."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "gallery").rglob("plot_*.py"))


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_script_runs_in_quick_mode(script, tmp_path):
    env = {**os.environ, "MLA_QUICK": "1", "MPLBACKEND": "agg"}
    done = subprocess.run(
        [sys.executable, str(script)],
        check=False,
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, (
        f"{script.name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}"
    )
