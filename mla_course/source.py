"""Show the package's own source on a page: the code that made the numbers.

A lesson page ends a cell with ``show_source(adam_update)``: the book shows the
function exactly as it is in the package, highlighted, so the page and the code
that ran cannot drift apart. In a terminal or a notebook it prints as plain code.
"""

from __future__ import annotations

import html
import inspect
import textwrap

__all__ = ["Source", "show_source"]


class Source:
    """The source code of a function, class or method, as it is in the package."""

    def __init__(self, obj):
        try:
            self.code = textwrap.dedent(inspect.getsource(obj)).rstrip() + "\n"
        except (TypeError, OSError) as error:
            raise TypeError(f"obj={obj!r}: expected a function, class or method") from error
        module = inspect.getmodule(obj)
        self.where = f"{module.__name__ if module else '?'}.{getattr(obj, '__qualname__', obj)}"

    def __repr__(self) -> str:
        return f"# {self.where}\n{self.code}"

    def _repr_html_(self) -> str:
        try:
            from pygments import highlight
            from pygments.formatters import HtmlFormatter
            from pygments.lexers import PythonLexer
        except ImportError:  # pygments comes with Sphinx and Jupyter; plain text otherwise
            body = f"<pre>{html.escape(self.code)}</pre>"
        else:
            body = highlight(self.code, PythonLexer(), HtmlFormatter(cssclass="highlight"))
        return (
            f'<div class="mla-source"><p class="mla-source-name">'
            f"<code>{html.escape(self.where)}</code>, from the package</p>"
            f'<div class="highlight-python notranslate">{body}</div></div>'
        )


def show_source(obj) -> Source:
    """The source of ``obj`` (a function, class or method), to display as a cell's result."""
    return Source(obj)
