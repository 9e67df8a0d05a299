"""Sphinx extension: what the built HTML needs to be read offline with a clean browser console.

1. MathJax 3 is served from the built book, so the maths is typeset without a network.
2. Each page loads a script once: sphinx-thebe registers its inline configuration twice in a
   Jupyter Book build, and the second copy is a console error ("THEBE_JS_URL has already been
   declared").
3. The line that ``bn_utils.book.show_figure`` prints under a figure ("Source: " and profile,
   device, commit) becomes a collapsed note inside the figure, under its caption.
4. A cell's ``# NBVAL_CHECK_OUTPUT`` line (it tells nbval to compare the cell's output with the
   stored one) is left out of the page: it says nothing to a reader.
5. A number never breaks inside itself on a narrow screen ("1.2e-" / "07", "4" / "%"): in the
   prose and in printed lines, each number with its sign, exponent, range and unit is set in a
   no-wrap span (class ``bn-nobr``), and a short inline literal (```1e-5```) stays whole.

MathJax comes from the registry package ``django-static-mathjax`` (the unmodified MathJax 3
distribution; it needs no Django). The build copies the browser bundle (es5: the loader, its
extensions and fonts) into ``_static/mathjax`` and points Sphinx's ``mathjax_path`` at it.
"""

from __future__ import annotations

import re
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


_NUMBER = r"[\u2212-]?\d[\d,]*(?:\.\d+)?(?:e[-+\u2212]?\d+)?"
_SPACE = "[ \u00a0\u202f]"   # not a line's end: a printed line keeps its lines
# A number not inside a word, a name or another number ("BN-x5", "top-1", "2026-11-25"), with
# what may not be parted from it: "± 0.4", a range's second end ("18.7–21.8"), "x" or " %".
WHOLE_NUMBER = re.compile(rf"(?<![\w.\-\u2212\u2011]){_NUMBER}(?:{_SPACE}?[±–]{_SPACE}?{_NUMBER})*"
                          rf"(?:{_SPACE}?%|x(?!\w))?")
_BREAKABLE = re.compile(r"[\s\-–±]")   # where a line may break inside such a number
SHORT_LITERAL = 20   # an inline literal this short (a value, a profile's name) never wraps
_NO_NUMBERS = (nodes.literal, nodes.literal_block, nodes.math, nodes.math_block, nodes.raw,
               nodes.comment, nodes.target)


def whole_number_pieces(text: str) -> list[tuple[str, bool]]:
    """Split ``text`` into (piece, keep_whole) pairs: each number that a line could break inside
    is a piece of its own, to be kept on one line."""
    pieces, at = [], 0
    for m in WHOLE_NUMBER.finditer(text):
        if _BREAKABLE.search(m.group(0)):
            pieces += [(text[at:m.start()], False), (m.group(0), True)]
            at = m.end()
    return [p for p in pieces + [(text[at:], False)] if p[0]]


def _keep_numbers_whole(app, doctree) -> None:
    """Set each number of the prose in a no-wrap span, keep short inline literals whole, and set
    each printed line's numbers in no-wrap spans (the output becomes HTML with the same classes)."""
    for text in list(doctree.findall(nodes.Text)):
        parent = text.parent
        if parent is None or any(isinstance(a, _NO_NUMBERS) for a in _ancestors(text)):
            continue
        pieces = whole_number_pieces(str(text))
        if not any(whole for _, whole in pieces):
            continue
        new = [nodes.inline(p, p, classes=["bn-nobr"]) if whole else nodes.Text(p)
               for p, whole in pieces]
        parent.replace(text, new)
    for literal in doctree.findall(nodes.literal):
        if len(literal.astext()) <= SHORT_LITERAL:
            literal["classes"].append("bn-short")
    for block in list(doctree.findall(nodes.literal_block)):
        if "stream" not in block["classes"] or "\x1b" in block.astext():   # ANSI colours: as is
            continue
        body = "".join(f'<span class="bn-nobr">{escape(p)}</span>' if whole else escape(p)
                       for p, whole in whole_number_pieces(block.astext()))
        if "bn-nobr" in body:   # the HTML Sphinx writes for the block, with the spans
            classes = " ".join([*block["classes"], f"highlight-{block.get('language') or 'none'}",
                                "notranslate"])
            block.parent.replace(block, nodes.raw("", f'<div class="{classes}"><div class="highlight">'
                                                      f'<pre>{body}</pre></div></div>', format="html"))


def _ancestors(node):
    while node.parent is not None:
        node = node.parent
        yield node


def setup(app):
    app.connect("doctree-read", _fold_sources)
    app.connect("doctree-read", _drop_nbval_marker)
    app.connect("doctree-read", _keep_numbers_whole, priority=600)   # after the two above
    app.connect("config-inited", _use_local_mathjax)
    # before the theme's handlers: the first to return a template name ends the event
    app.connect("html-page-context", _scripts_once, priority=1)
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
