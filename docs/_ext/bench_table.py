"""The ``.. bench-table:: PATH`` directive of the Performance page.

Reads a benchmark JSON file written by ``python -m mla_course.bench`` (path
relative to the page) and shows its tables (:func:`mla_course.bench.rst_table`).
"""

import json
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList
from sphinx.util.nodes import nested_parse_with_titles

from mla_course.bench import rst_table


class BenchTable(Directive):
    """Reads a benchmark JSON file (path relative to the page) and shows its table."""

    required_arguments = 1

    def run(self):
        env = self.state.document.settings.env
        rel, path = env.relfn2path(self.arguments[0])
        env.note_dependency(rel)
        try:
            results = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise self.error(f"bench-table: cannot read {path}: {err}") from None
        node = nodes.container()
        nested_parse_with_titles(
            self.state, StringList(rst_table(results).splitlines(), path), node
        )
        return node.children


def setup(app):
    app.add_directive("bench-table", BenchTable)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
