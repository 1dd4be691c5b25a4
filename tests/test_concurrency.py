"""Several processes preparing the same fresh cache at once all succeed (issue 14, item 2).

Four processes start each trial together (a barrier) on a fresh ``MLA_CACHE_DIR``:
they all read the mirror in place and all cache results in it at the same time.
"""

import multiprocessing
import os
import traceback
from pathlib import Path

import pytest

WORKERS = 4
TRIALS = 10
FIRST_TEST_LABELS = [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]  # of the original MNIST test set


def _worker(base: str, barrier, results) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    from mla_course import cache, data  # imported once, before the first trial

    for trial in range(TRIALS):
        os.environ["MLA_CACHE_DIR"] = str(Path(base) / f"trial{trial}")
        barrier.wait(timeout=600)
        try:
            _, y = data.load_tensors("mnist", "test", limit=10, device="cpu")
            value = cache.memoize({"trial": trial}, lambda y=y: {"labels": y.tolist()})
            results.put((trial, "ok", value["labels"]))
        except Exception:  # noqa: BLE001 -- reported to the test, whatever it is
            results.put((trial, "failed", traceback.format_exc()))


@pytest.mark.slow
def test_four_processes_prepare_a_fresh_cache_together(mirror, tmp_path):
    context = multiprocessing.get_context("spawn")  # no fork of a process that runs torch
    barrier, results = context.Barrier(WORKERS), context.Queue()
    workers = [
        context.Process(target=_worker, args=(str(tmp_path), barrier, results))
        for _ in range(WORKERS)
    ]
    for w in workers:
        w.start()
    outcomes = [results.get(timeout=600) for _ in range(WORKERS * TRIALS)]
    for w in workers:
        w.join(timeout=60)
    failures = [text for _, status, text in outcomes if status != "ok"]
    assert not failures, f"{len(failures)} of {len(outcomes)} failed; first:\n{failures[0]}"
    assert all(labels == FIRST_TEST_LABELS for _, _, labels in outcomes)
    for trial in range(TRIALS):
        assert not (tmp_path / f"trial{trial}" / "data").exists()  # the mirror is read in place
