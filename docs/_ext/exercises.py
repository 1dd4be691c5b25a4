"""Exercises generated from their solutions: a Sphinx extension for the gallery.

After the scikit-learn MOOC (``python_scripts/*_sol_*.py`` is the single source and its
build strips it into ``*_ex_*.py``), the solution is the source: it lives at the end of
its gallery page, runs at every build and is checked like the rest of the page. A
solution cell starts with the line ``# %% [solution]`` (Sphinx-Gallery drops the whole
``# %%`` line, so the page shows the solution as ordinary cells) and runs to the next
``# %%`` line; its text starts with ``**Solution.**``. Every solution cell follows a
heading ``Exercises`` (or ``Exercise``) underlined with ``-``.

For each such page ``plot_XX.py`` the build writes ``plot_XX_exercise.py`` and
``plot_XX_exercise.ipynb`` beside the page's own downloads, with each run of solution
cells replaced by one cell ``# Write your code here.``; it puts the label
``exercises-plot_xx`` before the page's ``Exercises`` heading and the two downloads right
under it. The notes for page authors are in ``/work/agents/EXERCISES.md``.

``python docs/_ext/exercises.py PAGE.py`` prints the exercise generated from a page, or the
rule it breaks.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

SOLUTION_MARKER = "# %% [solution]"
PLACEHOLDER = "# Write your code here."
SUFFIX = "_exercise"
# A cell boundary as Sphinx-Gallery reads it (py_source_parser): a line of 20 or more
# hashes, or ``# %%`` with anything after it.
_CELL_HEADER = re.compile(r"^(#{20,}.*|# ?%%.*)$")
_HEADING = re.compile(r"^# (Exercises?)[ \t]*\n# (-{3,})[ \t]*$", re.MULTILINE)
_RST_HEADING = re.compile(r"^(Exercises?)[ \t]*\n(-{3,})[ \t]*$", re.MULTILINE)


class ExerciseError(ValueError):
    """A page's exercises break one of the rules of the module docstring."""


@dataclass
class Cell:
    """One ``# %%`` cell of a gallery script: its header line, then its lines."""

    header: str
    lines: list[str]
    lineno: int  # 1-based line of the header in the script

    @property
    def solution(self) -> bool:
        return self.header.rstrip() == SOLUTION_MARKER

    @property
    def text(self) -> str:
        """The comment lines right after the header: the cell's prose."""
        out = []
        for line in self.lines:
            if not line.startswith("#"):
                break
            out.append(line)
        return "\n".join(out)

    @property
    def code(self) -> str:
        return "\n".join(self.lines[len(self.text.splitlines()) :])


def split_cells(source: str) -> tuple[str, list[Cell]]:
    """The docstring part of a gallery script (every line up to the end of its docstring),
    and its cells."""
    tree = ast.parse(source)
    first = tree.body[0] if tree.body else None
    has_doc = (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    )
    lines = source.splitlines()
    end = first.end_lineno if has_doc else 0
    head, cells = "\n".join(lines[:end]), []
    preamble: list[str] = []
    for number, line in enumerate(lines[end:], start=end + 1):
        if _CELL_HEADER.match(line):
            cells.append(Cell(line, [], number))
        elif cells:
            cells[-1].lines.append(line)
        else:
            preamble.append(line)
    if preamble:
        head = "\n".join([head, *preamble]) if head else "\n".join(preamble)
    return head, cells


def has_solutions(source: str) -> bool:
    return any(line.rstrip() == SOLUTION_MARKER for line in source.splitlines())


def _bound_and_loaded(code: str, where: str) -> tuple[set[str], set[str]]:
    try:
        tree = ast.parse(code)
    except SyntaxError as err:
        raise ExerciseError(f"{where}: the cell's code does not parse on its own ({err})") from err
    bound, loaded = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (bound if isinstance(node.ctx, ast.Store | ast.Del) else loaded).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
    return bound, loaded


def _retitle(head: str) -> str:
    """The docstring's reST title, marked as the exercise version of the page."""

    def sub(match: re.Match) -> str:
        title = f"{match['title'].strip()} (exercises)"
        rule = match["rule"][0] * len(title)
        over = f"{rule}\n" if match["over"] else ""
        return f"{over}{title}\n{rule}"

    pattern = r"^(?P<over>([=#*~-])\2{2,}\n)?(?P<title>[^\n]+)\n(?P<rule>([=#*~-])\5{2,})$"
    return re.sub(pattern, sub, head, count=1, flags=re.MULTILINE)


def strip_solutions(source: str, name: str = "<page>") -> str:
    """The exercise made from a gallery page: each run of solution cells becomes one
    ``# Write your code here.`` cell. Raises ExerciseError, naming the page, the line and
    the rule, when the page breaks a rule of the module docstring."""
    head, cells = split_cells(source)
    solutions = [cell for cell in cells if cell.solution]
    if not solutions:
        raise ExerciseError(f"{name}: no {SOLUTION_MARKER!r} cell, so no exercise to make")
    heading = next((i for i, cell in enumerate(cells) if _HEADING.search(cell.text)), None)
    if heading is None:
        raise ExerciseError(
            f"{name}: has {SOLUTION_MARKER!r} cells but no 'Exercises' heading "
            "(a cell whose text starts '# Exercises' over '# ---------')"
        )
    out = [head]
    in_run = False
    seen_solution: set[str] = set()  # names bound in solution cells so far
    seen_plain: set[str] = set()  # names bound in ordinary cells so far
    for index, cell in enumerate(cells):
        where = f"{name}, line {cell.lineno}"
        if cell.solution:
            if index < heading:
                raise ExerciseError(
                    f"{where}: a solution cell before the 'Exercises' heading "
                    f"(line {cells[heading].lineno}); solutions belong under it"
                )
            first_text = cell.text.lstrip("#").strip()
            if not in_run and not first_text.startswith("**Solution"):
                raise ExerciseError(
                    f"{where}: a solution cell's text must start with '**Solution.**', "
                    f"got {first_text[:40]!r}"
                )
            seen_solution |= _bound_and_loaded(cell.code, where)[0]
            if not in_run:
                out += ["# %%", "", PLACEHOLDER, ""]
            in_run = True
            continue
        in_run = False
        bound, loaded = _bound_and_loaded(cell.code, where)
        seen_plain |= bound
        missing = sorted((loaded & seen_solution) - seen_plain)
        if missing:
            raise ExerciseError(
                f"{where}: uses {', '.join(missing)}, defined only in a solution cell above; "
                "the exercise has no such name there. Define it in an ordinary cell."
            )
        out += [cell.header, *cell.lines]
    text = "\n".join(out).rstrip("\n") + "\n"
    compile(text, f"{name} (exercise)", "exec")
    return _retitle(text)


def exercise_name(script: Path) -> str:
    return f"{script.stem}{SUFFIX}"


def label(script: Path) -> str:
    """The reference label of a page's Exercises section, e.g. ``exercises-plot_03_x``."""
    return f"exercises-{script.stem}".lower()


# ---------------------------------------------------------------------------------------
# The Sphinx side


def _gallery_pairs(app):
    conf = app.config.sphinx_gallery_conf
    srcdir = Path(app.srcdir)
    examples = conf["examples_dirs"]
    galleries = conf["gallery_dirs"]
    examples = [examples] if isinstance(examples, str) else examples
    galleries = [galleries] if isinstance(galleries, str) else galleries
    for ex, gal in zip(examples, galleries, strict=True):
        yield (srcdir / ex).resolve(), (srcdir / gal).resolve()


def write_exercises(app) -> None:
    """builder-inited, after Sphinx-Gallery: each page's exercise, as .py and .ipynb."""
    from sphinx_gallery import py_source_parser
    from sphinx_gallery.notebook import jupyter_notebook, save_notebook

    conf = app.config.sphinx_gallery_conf
    pages = {}
    for examples, gallery in _gallery_pairs(app):
        for script in sorted(examples.rglob("*.py")):
            if not re.search(conf["filename_pattern"], str(script)):
                continue
            target_dir = gallery / script.parent.relative_to(examples)
            source = script.read_text(encoding="utf-8")
            stale = [target_dir / f"{exercise_name(script)}{ext}" for ext in (".py", ".ipynb")]
            if not has_solutions(source):
                for path in stale:
                    path.unlink(missing_ok=True)
                continue
            exercise = strip_solutions(source, str(script.relative_to(examples.parent)))
            target_dir.mkdir(parents=True, exist_ok=True)
            py_file = target_dir / f"{exercise_name(script)}.py"
            py_file.write_text(exercise, encoding="utf-8")
            _, blocks = py_source_parser.split_code_and_text_blocks(py_file)
            blocks = [
                py_source_parser.Block(
                    kind, py_source_parser.remove_config_comments(content), lineno
                )
                if conf["remove_config_comments"]
                else py_source_parser.Block(kind, content, lineno)
                for kind, content, lineno in blocks
            ]
            blocks = [b for b in blocks if b.content.strip()]
            save_notebook(jupyter_notebook(blocks, conf, target_dir), py_file.with_suffix(".ipynb"))
            docname = (target_dir / script.stem).relative_to(Path(app.srcdir).resolve())
            pages[docname.as_posix()] = script
    app.env.mla_exercise_pages = pages


def insert_downloads(app, docname, source) -> None:
    """source-read: the label before a page's Exercises heading, the downloads under it."""
    script = getattr(app.env, "mla_exercise_pages", {}).get(docname)
    if script is None:
        return
    text = source[0]
    match = _RST_HEADING.search(text)
    if match is None:
        raise ExerciseError(f"{docname}: no 'Exercises' heading in the generated page")
    name = exercise_name(script)
    block = (
        f".. _{label(script)}:\n\n{match[0]}\n\n"
        ".. rst-class:: mla-exercise-downloads\n\n"
        f"Download this exercise as a :download:`notebook <{name}.ipynb>` or as a "
        f":download:`Python script <{name}.py>`: the page's code with each solution "
        f"replaced by ``{PLACEHOLDER}`` The solutions follow on this page.\n"
    )
    source[0] = text[: match.start()] + block + text[match.end() :]


def setup(app):
    # After Sphinx-Gallery's generate_gallery_rst (builder-inited, priority 500).
    app.connect("builder-inited", write_exercises, priority=550)
    app.connect("source-read", insert_downloads)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        try:
            sys.stdout.write(strip_solutions(Path(arg).read_text(encoding="utf-8"), arg))
        except ExerciseError as err:
            sys.exit(f"error: {err}")
