"""Sphinx extension: what the built HTML needs to be read offline with a clean browser console.

1. MathJax 3 is served from the built book, so the maths is typeset without a network.
2. Each page loads a script once: sphinx-thebe registers its inline configuration twice in a
   Jupyter Book build, and the second copy is a console error ("THEBE_JS_URL has already been
   declared").
3. The line that ``bn_utils.book.show_figure`` prints under a figure ("Source: " and profile,
   device, commit) becomes a collapsed note inside the figure, under its caption.
4. A cell's ``# NBVAL_CHECK_OUTPUT`` line (it tells nbval to compare the cell's output with the
   stored one) is left out of the page: it says nothing to a reader.

MathJax comes from the registry package ``django-static-mathjax`` (the unmodified MathJax 3
distribution; it needs no Django). The build copies the browser bundle (es5: the loader, its
extensions and fonts) into ``_static/mathjax`` and points Sphinx's ``mathjax_path`` at it.
"""

from __future__ import annotations

import shutil
from html import escape
from pathlib import Path

from docutils import nodes

BUNDLE = "tex-mml-chtml.js"
PARTS = (BUNDLE, "input", "output", "a11y", "ui", "adaptors", "sre")  # what the bundle loads


def mathjax_es5() -> Path:
    """Return the folder of the installed MathJax 3 browser bundle (es5)."""
    try:
        import mathjax
    except ImportError as err:
        raise RuntimeError("MathJax for the offline book is missing: pip install "
                           "django-static-mathjax (make install does)") from err
    es5 = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (es5 / BUNDLE).is_file():
        raise RuntimeError(f"no MathJax 3 bundle at {es5 / BUNDLE}")
    return es5


def _use_local_mathjax(app, config) -> None:
    mathjax_es5()  # fail at the start of the build, not after executing every chapter
    config.mathjax_path = f"mathjax/{BUNDLE}"  # relative to _static


def _copy_mathjax(app, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    es5, target = mathjax_es5(), Path(app.outdir) / "_static" / "mathjax"
    for part in PARTS:
        src = es5 / part
        if src.is_dir():
            shutil.copytree(src, target / part, dirs_exist_ok=True)
        elif src.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, target / part)
    shutil.copy2(es5.parent / "LICENSE", target / "LICENSE")


def _scripts_once(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for script in scripts:
        # an inline script is added once with filename None and once with "": the same script
        name = getattr(script, "filename", script) or ""
        key = (str(name), repr(sorted(getattr(script, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


SOURCE_PREFIX = "Source: "  # bn_utils.book.SOURCE_PREFIX (this extension imports no bn_utils)


def _source_note(text: str) -> nodes.raw:
    body = escape(text[len(SOURCE_PREFIX):].strip())
    return nodes.raw("", f'<details class="bn-source"><summary>Where the numbers come from'
                         f'</summary><p>{body}</p></details>', format="html")


def _retext(block: nodes.literal_block, text: str) -> None:
    """Replace ``block`` by a listing of ``text`` with the same attributes (classes, language)."""
    block.replace_self(nodes.literal_block(text, text, **block.attributes))


def _fold_sources(app, doctree) -> None:
    """Replace each printed "Source: ..." line of a cell by a collapsed note, inside the figure
    the cell showed just before it (else in the line's place); other printed lines stay."""
    for block in list(doctree.findall(nodes.literal_block)):
        if "stream" not in block["classes"] or not block.astext().startswith(SOURCE_PREFIX):
            continue
        first, _, rest = block.astext().partition("\n")
        parent = block.parent
        index = parent.index(block)
        figure = next((n for n in reversed(parent.children[:index]) if isinstance(n, nodes.figure)),
                      None)
        note = _source_note(first)
        if rest.strip():
            _retext(block, rest)
        else:
            parent.remove(block)
        if figure is not None:
            figure.append(note)
        else:
            parent.insert(index, note)


NBVAL_MARKER = "# NBVAL_CHECK_OUTPUT"


def _drop_nbval_marker(app, doctree) -> None:
    """Remove the nbval marker line from the source listing of each cell that starts with it."""
    for block in list(doctree.findall(nodes.literal_block)):
        first, _, rest = block.astext().partition("\n")
        if first.strip() != NBVAL_MARKER or "stream" in block["classes"]:
            continue
        _retext(block, rest)


def setup(app):
    app.connect("doctree-read", _fold_sources)
    app.connect("doctree-read", _drop_nbval_marker)
    app.connect("config-inited", _use_local_mathjax)
    # before the theme's handlers: the first to return a template name ends the event
    app.connect("html-page-context", _scripts_once, priority=1)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
