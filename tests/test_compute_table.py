"""The Performance page's table of the book's compute (docs/_ext/compute_table.py)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "docs" / "_ext"))
import compute_table


def test_pages_are_summed_and_set_beside_their_time_and_the_peak(tmp_path):
    row = {"runs": 2, "steps": 10, "flops": 4e9, "trained_runs": 1, "trained_flops": 2e9}
    (tmp_path / "plot_01_a.jsonl").write_text(json.dumps(row) + "\n" + json.dumps(row) + "\n")
    totals = compute_table.page_totals(tmp_path)
    assert totals == {"plot_01_a": {k: 2 * v for k, v in row.items()}}
    text = compute_table.table(totals, {"plot_01_a": 2.0}, peak=4.0)
    page = text.split("``plot_01_a``")[1].split("* -")[0]
    cells = [c.strip() for c in page.split("- ")[1:]]
    assert cells == ["4", "20", "8", "4", "2", "2.0", "50%"]
    assert "**all pages**" in text
