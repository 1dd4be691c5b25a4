"""tools/gpu-run.sh rehearsed on the CPU (MLA_GPU_RUN_DRY=1): stages, report, exit status."""

import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "gpu-run.sh"


def _run(tmp_path, stages, tests, **env):
    wheels = tmp_path / "wheels"
    wheels.mkdir(exist_ok=True)  # empty: the dry install finds everything already installed
    out = tmp_path / "out"
    full_env = {
        **os.environ,
        "MLA_GPU_RUN_DRY": "1",
        "PYTHON": os.environ.get("PYTHON", sys.executable),
        "MLA_WHEELS": str(wheels),
        "MLA_GPU_RUN_STAGES": stages,
        "MLA_GPU_RUN_TESTS": tests,
        **env,
    }
    done = subprocess.run(
        ["bash", str(SCRIPT), str(out)],
        check=False,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return done, out


@pytest.mark.slow
def test_dry_run_passes_and_reports_each_stage(tmp_path):
    done, out = _run(tmp_path, "install,device,tests", "tests/test_settings.py::test_device")
    log = (out / "gpu-run.log").read_text()
    assert done.returncode == 0, done.stdout + done.stderr
    for stage in ("install", "device", "tests"):
        assert f"{stage}: passed in " in log
    assert "bench: skipped" in log and "book: skipped" in log
    suite = ET.parse(out / "pytest.xml").getroot().find("testsuite")
    assert int(suite.get("tests")) >= 1 and int(suite.get("failures")) == 0


def test_a_failed_stage_does_not_stop_the_next_and_fails_the_run(tmp_path):
    done, out = _run(
        tmp_path, "tests,device", "tests/no_such_file.py", MLA_GPU_RUN_TIMEOUT_DEVICE="60"
    )
    log = (out / "gpu-run.log").read_text()
    assert done.returncode != 0
    assert "tests: FAILED" in log and "device: passed" in log
    assert "failed: tests" in log


def test_a_stage_past_its_time_limit_fails(tmp_path):
    done, out = _run(tmp_path, "device", "", MLA_GPU_RUN_TIMEOUT_DEVICE="0.01")
    assert done.returncode != 0
    assert "device: FAILED (exit 124" in (out / "gpu-run.log").read_text()


def test_the_book_stage_builds_as_nox_docs_does():
    nox = (ROOT / "noxfile.py").read_text()
    script = SCRIPT.read_text()
    for arg in ('"-W"', '"--keep-going"', '"-b"', '"html"', '"docs"', '"docs/_build/html"'):
        assert arg in nox
    assert "-m sphinx -W --keep-going -b html docs docs/_build/html" in script
