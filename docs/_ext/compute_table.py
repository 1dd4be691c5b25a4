"""The book's compute, page by page: the ``.. compute-table::`` directive of the Performance page.

Before Sphinx-Gallery runs the pages, this extension points ``MLA_COMPUTE_DIR`` at a fresh
folder, where :mod:`mla_course.runs` records, for every call, the runs a page asked for: their
number, network-steps and training FLOPs (from the configurations,
:attr:`mla_course.config.Config.training_flops`), and the FLOPs of those trained in this build
rather than read from the results cache. The directive sums them per page and sets them beside
the page's time in this build (Sphinx-Gallery's ``<page>.cost.json``) and the machine's
single-thread float32 GEMM peak, measured when the table is made (each page runs in its own
process with one torch thread): ``.. compute-table::``.
"""

import json
import os
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList
from sphinx.util.nodes import nested_parse_with_titles

FIELDS = ("runs", "steps", "flops", "trained_runs", "trained_flops")


def _folder(app) -> Path:
    return Path(app.doctreedir) / "mla_compute"


def _start(app) -> None:
    folder = _folder(app)
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.jsonl"):
        old.unlink()
    os.environ["MLA_COMPUTE_DIR"] = str(folder)  # inherited by the pages, also in parallel workers


def page_totals(folder: Path) -> dict[str, dict]:
    """Each page's sums of the recorded fields."""
    totals = {}
    for path in sorted(folder.glob("*.jsonl")):
        rows = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
        totals[path.stem] = {k: sum(r[k] for r in rows) for k in FIELDS}
    return totals


def table(totals: dict[str, dict], seconds: dict[str, float], peak: float) -> str:
    """reStructuredText of the table: one row per page, then the book's total."""
    lines = [
        ".. list-table::",
        "   :header-rows: 1",
        "   :class: mla-compute",
        "",
        "   * - page",
        "     - runs",
        "     - network-steps",
        "     - GFLOP (all runs)",
        "     - GFLOP trained in this build",
        "     - page time (s)",
        "     - GFLOP/s trained",
        "     - share of the GEMM peak",
    ]
    rows = dict(totals)
    rows["**all pages**"] = {k: sum(t[k] for t in totals.values()) for k in FIELDS}
    seconds = {**seconds, "**all pages**": sum(seconds.get(p, 0.0) for p in totals)}
    for page, t in rows.items():
        time = seconds.get(page)
        rate = t["trained_flops"] / time / 1e9 if time else None
        lines += [
            f"   * - {page if page.startswith('*') else f'``{page}``'}",
            f"     - {t['runs']:,}",
            f"     - {t['steps']:,}",
            f"     - {t['flops'] / 1e9:,.0f}",
            f"     - {t['trained_flops'] / 1e9:,.0f}",
            f"     - {time:,.0f}" if time is not None else "     - ",
            f"     - {rate:.1f}" if rate is not None else "     - ",
            f"     - {rate / peak:.0%}" if rate is not None and peak else "     - ",
        ]
    return "\n".join(lines) + "\n"


def single_thread_peak() -> float:
    """GFLOP/s of a large float32 matrix product on one thread, on this machine, now."""
    import torch

    from mla_course.bench import gemm_peak

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return gemm_peak()["gflops"]
    finally:
        torch.set_num_threads(threads)


class ComputeTable(Directive):
    """The compute of this build's pages beside their times and the machine's GEMM peak."""

    def run(self):
        env = self.state.document.settings.env
        app = env.app
        peak = single_thread_peak()
        totals = page_totals(_folder(app))
        if not totals:
            return [nodes.paragraph(text="No page recorded its runs in this build.")]
        seconds = {}
        for cost in (Path(app.srcdir) / "auto_examples").rglob("plot_*.cost.json"):
            seconds[cost.name.removesuffix(".cost.json")] = json.loads(cost.read_text())["time"]
        text = table(totals, seconds, peak)
        text += (
            f"\nThe share is of this machine's single-thread float32 GEMM peak, measured as "
            f"this table was made: {peak:.0f} GFLOP/s. It counts only the training products of the runs trained "
            "in this build: evaluation, plotting, Python and the runs a page trains without "
            ":mod:`mla_course.runs` take the rest of the page time.\n"
        )
        node = nodes.container()
        nested_parse_with_titles(self.state, StringList(text.splitlines(), "compute-table"), node)
        return node.children


def setup(app):
    app.add_directive("compute-table", ComputeTable)
    app.connect("builder-inited", _start, priority=100)  # before Sphinx-Gallery runs the pages
    return {"parallel_read_safe": True, "parallel_write_safe": True}
