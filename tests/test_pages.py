"""The chapters as pages a learner reads, checked in their stored source (fast, no build; see
CONTRIBUTING.md, "Pages"): each opens with prose and keeps its setup collapsed; every figure cell
shows a numbered figure with a caption and alt text, made by a function that lays out at most
two panels per row; bookkeeping cells (glue) are hidden; solutions are labelled; key takeaways,
each backed by a glued number, come before the exercises. A failure names the chapter and cell."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(p.stem for p in (REPO / "chapters").glob("[0-9][0-9]_*.ipynb"))
# A cell "makes a figure" when a line (not a comment) assigns a figure or calls a plot function
# (the same rule as tests/test_built_book.py).
FIGURE_LINE = re.compile(r"^(?!\s*#).*(\bfig\w*\s*=|\bplot\w*\(|plt\.)", re.M)
# Ways to make a figure that bypass plotting.panels (and its limit of two panels per row).
RAW_LAYOUT = re.compile(r"\b(plt\.subplots|plt\.figure|plt\.subplot|subplot_mosaic|add_subplot|"
                        r"add_gridspec|GridSpec)\s*\(")
MIN_CAPTION_WORDS = 8
# The words a collapsed cell shows, the same in every chapter.
TOGGLES = ("Show the parameters", "Show the setup", "Show the configuration", "Show solution")


def _cells(chapter: str) -> list[dict]:
    nb = json.loads((REPO / "chapters" / f"{chapter}.ipynb").read_text())
    return nb["cells"]


def _src(cell: dict) -> str:
    return "".join(cell["source"])


def _tags(cell: dict) -> list[str]:
    return cell.get("metadata", {}).get("tags", [])


def _where(chapter: str, cells: list[dict], i: int) -> str:
    return f"{chapter}, cell {i} (id {cells[i].get('id')})"


def _figure_cells(cells: list[dict]) -> list[int]:
    return [i for i, c in enumerate(cells) if c["cell_type"] == "code" and FIGURE_LINE.search(_src(c))]


def _imported_modules(cells: list[dict]) -> dict:
    """Return the names the chapter's code cells bind by import to a module or a function."""
    names = {}
    for c in cells:
        if c["cell_type"] != "code":
            continue
        try:
            tree = ast.parse(_src(c))
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for a in node.names:
                    names[a.asname or a.name.split(".")[0]] = a.name
            elif isinstance(node, ast.ImportFrom) and node.module:
                for a in node.names:
                    names[a.asname or a.name] = f"{node.module}:{a.name}"
    return names


def _resolve(target: str):
    if ":" in target:
        module, name = target.split(":")
        owner = importlib.import_module(module)
        return getattr(owner, name, None) or importlib.import_module(f"{module}.{name}")
    return importlib.import_module(target)


def _plot_functions(cell: dict, names: dict) -> list:
    """Return the bn_utils functions whose name starts with "plot" that a cell calls."""
    found = []
    for node in ast.walk(ast.parse(_src(cell))):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr.startswith("plot") and isinstance(f.value, ast.Name):
            target = names.get(f.value.id)
            if target and target.startswith("bn_utils"):
                found.append(getattr(_resolve(target), f.attr))
        elif isinstance(f, ast.Name) and f.id.startswith("plot") and names.get(f.id, "").startswith("bn_utils"):
            found.append(_resolve(names[f.id]))
    return found


def _layout_problems(source: str) -> list[str]:
    """Return what in ``source`` makes a figure other than with plotting.panels, or asks it for
    more than two panels per row."""
    problems = [f"makes its figure with {m.group(1)}() instead of plotting.panels()"
                for m in RAW_LAYOUT.finditer(source)]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) == "panels":
            ncols = [k.value for k in node.keywords if k.arg == "ncols"]
            if ncols and isinstance(ncols[0], ast.Constant) and ncols[0].value > 2:
                problems.append(f"asks plotting.panels for ncols={ncols[0].value} (at most 2)")
    return problems


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_figure_cell_shows_a_numbered_figure_with_a_caption_and_alt_text(chapter):
    cells, problems, names = _cells(chapter), [], set()
    for i in _figure_cells(cells):
        meta = cells[i].get("metadata", {}).get("mystnb", {})
        figure, image = meta.get("figure", {}), meta.get("image", {})
        where = _where(chapter, cells, i)
        if len(str(figure.get("caption", "")).split()) < MIN_CAPTION_WORDS:
            problems.append(f"{where}: no caption (mystnb.figure.caption, a sentence on what to "
                            "look at)")
        if not str(figure.get("name", "")).startswith(f"fig-{chapter[:2]}-"):
            problems.append(f"{where}: no figure name fig-{chapter[:2]}-... (mystnb.figure.name; "
                            "a label is global to the book)")
        elif figure["name"] in names:
            problems.append(f"{where}: figure name {figure['name']} used twice")
        names.add(figure.get("name"))
        if len(str(image.get("alt", "")).split()) < 4:
            problems.append(f"{where}: no alt text (mystnb.image.alt, what the image shows)")
        if "book.show_figure(" not in _src(cells[i]):
            problems.append(f"{where}: shows its figure without book.show_figure (no source note)")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_figure_has_more_than_two_panels_per_row(chapter):
    cells = _cells(chapter)
    names, problems = _imported_modules(cells), []
    for i in _figure_cells(cells):
        where = _where(chapter, cells, i)
        problems += [f"{where}: the cell {p}" for p in _layout_problems(_src(cells[i]))]
        for fn in _plot_functions(cells[i], names):
            label = f"{fn.__module__}.{fn.__qualname__}"
            source = inspect.getsource(fn)
            problems += [f"{where}: {label} {p}" for p in _layout_problems(source)]
            if "panels(" not in source:
                problems.append(f"{where}: {label} does not lay out its figure with plotting.panels")
    assert not problems, "\n".join(problems)


def test_layout_check_catches_three_panels_in_a_row_and_raw_subplots():
    assert _layout_problems("fig, axes = plotting.panels(3, ncols=3)")
    assert _layout_problems("fig, axes = plt.subplots(1, 3)")
    assert not _layout_problems("fig, axes = plotting.panels(3, ncols=2, sharey=True)")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_chapter_opens_with_prose_and_collapses_its_parameters_and_setup(chapter):
    cells = _cells(chapter)
    first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    prose = [line for c in cells[:first_code] for line in _src(c).splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    assert len(" ".join(prose).split()) >= 30, (
        f"{chapter}: fewer than 30 words of prose before the first code cell")
    code = [i for i, c in enumerate(cells) if c["cell_type"] == "code"]
    for i in code[:2]:   # the parameters cell and the setup (Colab) cell
        assert {"hide-cell", "remove-cell"} & set(_tags(cells[i])), (
            f"{_where(chapter, cells, i)}: the parameters and setup cells are collapsed (hide-cell)")


def _ends_with_a_glue_call(source: str) -> bool:
    body = ast.parse(source).body
    last = body[-1] if body else None
    return (isinstance(last, ast.Expr) and isinstance(last.value, ast.Call)
            and ast.unparse(last.value.func) == "book.glue")


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_bookkeeping_cells_that_glue_numbers_are_hidden(chapter):
    cells = _cells(chapter)
    code = [i for i, c in enumerate(cells) if c["cell_type"] == "code"]
    shown = [_where(chapter, cells, i) for i in code if "book.glue(" in _src(cells[i])
             and not {"remove-input", "remove-cell", "hide-input", "hide-cell"} & set(_tags(cells[i]))]
    assert not shown, "cells that glue numbers show their code (tag remove-input): " + "; ".join(shown)
    stray = [_where(chapter, cells, i) for i in code if _ends_with_a_glue_call(_src(cells[i]))]
    assert not stray, "cells that end with book.glue(...) print the value (assign it): " + "; ".join(stray)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_solutions_are_labelled_as_solutions(chapter):
    cells = _cells(chapter)
    unlabelled = [_where(chapter, cells, i) for i, c in enumerate(cells)
                  if c["cell_type"] == "code" and _src(c).lstrip().startswith("# Solution")
                  and c.get("metadata", {}).get("mystnb", {}).get("code_prompt_show") != "Show solution"]
    assert not unlabelled, "solution cells without mystnb.code_prompt_show 'Show solution': " + \
        "; ".join(unlabelled)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_collapsed_cell_says_what_it_hides(chapter):
    """Jupyter Book's default toggle reads "Show code cell outputs"; the book's name the contents
    (the parameters, the setup, the configuration, a solution), the same words in every chapter."""
    cells = _cells(chapter)
    unnamed = [_where(chapter, cells, i) for i, c in enumerate(cells)
               if c["cell_type"] == "code" and any(t.startswith("hide-") for t in _tags(c))
               and not c.get("metadata", {}).get("mystnb", {}).get("code_prompt_show")]
    assert not unnamed, "collapsed cells without mystnb.code_prompt_show: " + "; ".join(unnamed)
    shown = {c["metadata"]["mystnb"]["code_prompt_show"] for c in cells
             if c.get("metadata", {}).get("mystnb", {}).get("code_prompt_show")}
    assert shown <= set(TOGGLES), f"{chapter}: toggle labels outside the book's set: {sorted(shown - set(TOGGLES))}"


@pytest.mark.parametrize("chapter", [c for c in CHAPTERS if c != "10_verdicts"])
def test_key_takeaways_come_before_the_exercises_each_backed_by_a_glued_number(chapter):
    cells = _cells(chapter)
    md = [(i, _src(c)) for i, c in enumerate(cells) if c["cell_type"] == "markdown"]
    takeaways = [(i, s) for i, s in md if re.search(r"^## Key takeaways\s*$", s, re.M)]
    assert takeaways, f"{chapter}: no '## Key takeaways' section"
    i, text = takeaways[0]
    exercises = [j for j, s in md if re.search(r"^## Exercises\s*$", s, re.M)]
    assert not exercises or i < exercises[0], f"{chapter}: key takeaways come after the exercises"
    body = text.split("## Key takeaways", 1)[1].split("\n## ", 1)[0]
    bullets = re.findall(r"^[-*] (.+(?:\n  .+)*)", body, re.M)
    assert 3 <= len(bullets) <= 5, f"{_where(chapter, cells, i)}: {len(bullets)} takeaways, want 3-5"
    bare = [b[:60] for b in bullets if "{glue:" not in b]
    assert not bare, f"{_where(chapter, cells, i)}: takeaways without a glued number: {bare}"
