"""The built book as a reader meets it (run by `make book-check` on the smoke build; set
BN_BOOK_HTML to another build's html folder to check that one): every figure is an image in the
executed notebook and in the page, with a caption and a source note; links resolve, the Colab
button points at the configured repository, and, in headless Chromium, pages load cleanly with
every equation typeset offline and read at 1280 px and at a phone's 390 px: nothing scrolls
sideways outside its own scroll box (a table or an equation that scrolls in its box says so
above it), images are shown near their natural size or can be enlarged (a line under a small
one says so), no number breaks across lines ("1.2e-" / "07"), and a chapter's first paragraph
comes before any code; every name a chapter glues is shown in its prose. Screenshots of both
widths go to _build/screenshots/."""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

REPO = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("BN_BOOK_HTML", REPO / "_build" / "html")).resolve()
SCREENSHOTS = REPO / "_build" / "screenshots"
CHAPTERS = sorted(p.stem for p in (REPO / "chapters").glob("[0-9][0-9]_*.ipynb"))
# A cell "makes a figure" when a line (not a comment) assigns a figure or calls a plot function.
FIGURE_LINE = re.compile(r"^(?!\s*#).*(\bfig\w*\s*=|\bplot\w*\(|plt\.)", re.M)

if not (HTML / "index.html").is_file():
    if os.environ.get("BN_BOOK_HTML"):   # make test names the book it built: missing is a failure
        raise RuntimeError(f"BN_BOOK_HTML={os.environ['BN_BOOK_HTML']} holds no built book (index.html)")
    pytest.skip(f"no built book at {HTML} (make book-smoke, or set BN_BOOK_HTML)",
                allow_module_level=True)


def _pages() -> list[Path]:
    return sorted([HTML / "chapters" / f"{c}.html" for c in CHAPTERS] + [HTML / "chapters" / "intro.html"])


class _Html(HTMLParser):
    """The links, ids and images of one page, and its figures (images, caption, source note)."""

    def __init__(self):
        super().__init__()
        self.links, self.ids, self.images = [], set(), []
        self.stack, self.figures, self.bare_images = [], [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("href"):
            self.links.append(a["href"])
        if tag == "img":
            self.images.append(a.get("src", ""))
        if tag in ("figure", "figcaption", "details"):
            self.stack.append(tag)
            if tag == "figure":
                self.figures.append({"images": 0, "caption": "", "source": False})
            if tag == "details" and "bn-source" in a.get("class", "") and self.figures:
                self.figures[-1]["source"] = "figure" in self.stack
        if tag == "img" and "figure" in self.stack:
            self.figures[-1]["images"] += 1
        elif tag == "img" and "_images/" in a.get("src", ""):   # an output, not the theme's logo
            self.bare_images.append(a.get("src", ""))

    def handle_endtag(self, tag):
        if tag in ("figure", "figcaption", "details") and self.stack and self.stack[-1] == tag:
            self.stack.pop()

    def handle_data(self, data):
        if self.stack and self.stack[-1] == "figcaption" and self.figures:
            self.figures[-1]["caption"] += data


@functools.lru_cache(maxsize=None)
def _parse(path: Path) -> _Html:
    parser = _Html()
    parser.feed(path.read_text(errors="replace"))
    return parser


def _executed(chapter: str) -> dict:
    """Return the chapter as the build executed it. A page built from Jupyter Book's execution
    cache has its outputs in the cache, not in jupyter_execute/ (written there without them)."""
    import nbformat

    source = nbformat.read(REPO / "chapters" / f"{chapter}.ipynb", nbformat.NO_CONVERT)
    cache_dir = HTML.parent / ".jupyter_cache"
    if cache_dir.is_dir():
        from jupyter_cache import get_cache

        try:
            return get_cache(cache_dir).merge_match_into_notebook(source)[1]
        except KeyError:  # not in the cache: executed without it
            pass
    return nbformat.read(HTML.parent / "jupyter_execute" / "chapters" / f"{chapter}.ipynb",
                         nbformat.NO_CONVERT)


def _page_cells(chapter: str) -> list[str]:
    """Return the HTML of each code cell of a chapter's page, in order."""
    html = (HTML / "chapters" / f"{chapter}.html").read_text()
    return re.split(r'<div class="cell(?: [\w-]+)* docutils container"', html)[1:]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_cell_that_makes_a_figure_has_an_image_and_the_page_shows_it(chapter):
    code = [c for c in _executed(chapter).cells if c.cell_type == "code"]
    cells = [i for i, c in enumerate(code) if FIGURE_LINE.search(c.source)]
    missing = [i for i in cells if not any("image/png" in o.get("data", {}) for o in code[i].outputs)]
    assert not missing, f"{chapter}: code cells {missing} make a figure but have no image output"
    page = _page_cells(chapter)
    assert len(page) == len(code), f"{chapter}: {len(code)} code cells, {len(page)} on the page"
    no_img = [i for i in cells if not re.search(r'<img [^>]*src="[^"]*_images/[^"]+\.png"', page[i])]
    assert not no_img, f"{chapter}: code cells {no_img} make a figure the page does not show"


@pytest.mark.parametrize("page", [HTML / "chapters" / f"{c}.html" for c in CHAPTERS],
                         ids=lambda p: p.stem)
def test_every_image_is_a_numbered_figure_with_a_caption_and_a_source_note(page):
    parsed = _parse(page)
    assert not parsed.bare_images, f"{page.name}: images outside a figure: {parsed.bare_images[:3]}"
    for i, fig in enumerate(f for f in parsed.figures if f["images"]):
        caption = " ".join(fig["caption"].split())
        assert len(caption.split()) >= 8, f"{page.name}: figure {i + 1} has no caption ({caption!r})"
        assert fig["source"], f"{page.name}: figure {i + 1} has no source note under its caption"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_page_shows_the_nbval_marker_its_notebook_keeps(chapter):
    html = (HTML / "chapters" / f"{chapter}.html").read_text()
    assert "NBVAL_CHECK_OUTPUT" not in html, f"{chapter}: the page shows the nbval marker line"


# A glue role ({glue}`name`, {glue:text}`name:,.0f`, {glue:md}`chapters/x.ipynb::name`) or directive
# (```{glue:figure} name): the name it shows, with any document path and format.
GLUE_USE = re.compile(r"\{glue(?::\w+)?\}(?:`([^`]+)`|[ \t]+(\S+))")


def _glue_uses(text: str) -> set[tuple[str, str]]:
    """Return (document stem or "", name) for each glued name the text shows."""
    out = set()
    for role, directive in GLUE_USE.findall(text):
        doc, _, name = (role or directive).rpartition("::")
        out.add((Path(doc).stem, name.split(":")[0] if role else name))
    return out


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_name_a_chapter_glues_is_shown_in_its_prose(chapter):
    """A name glued but never shown is a number computed for nothing, or one the prose lost when
    it was reworded. Shown means in a markdown cell or in cell metadata (a caption), of this
    chapter or, as ``{chapter}.ipynb::name``, of any chapter."""
    import json

    folder = HTML.parent / "jupyter_execute" / "chapters"
    if not any(folder.glob("*.glue.json")):
        pytest.skip(f"no glue data next to the built book ({folder})")
    glued = folder / f"{chapter}.glue.json"
    names = set(json.loads(glued.read_text())) if glued.is_file() else set()   # none glued: no file
    shown = set()
    for other in CHAPTERS:
        cells = json.loads((REPO / "chapters" / f"{other}.ipynb").read_text())["cells"]
        text = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        text += "\n" + "\n".join(json.dumps(c.get("metadata", {}), ensure_ascii=False) for c in cells)
        shown |= {name for doc, name in _glue_uses(text) if doc == chapter or (not doc and other == chapter)}
    unused = sorted(names - shown)
    assert not unused, f"{chapter}: glues {len(unused)} names its prose never shows: {', '.join(unused)}"


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.stem)
def test_every_internal_link_and_anchor_resolves(page):
    broken = []
    for href in _parse(page).links:
        url = urlparse(href)
        if url.scheme or href.startswith(("mailto:", "javascript:")):
            continue
        target = (page.parent / unquote(url.path)).resolve() if url.path else page
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            broken.append(href)
        elif url.fragment and target.suffix == ".html" and url.fragment not in _parse(target).ids:
            broken.append(href)
    assert not broken, f"{page.name}: broken links {broken}"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_the_colab_button_opens_this_chapter_from_the_configured_repository(chapter):
    import yaml

    repo = yaml.safe_load((REPO / "_config.yml").read_text())["repository"]
    owner_name = urlparse(repo["url"]).path.strip("/")
    want = (f"https://colab.research.google.com/github/{owner_name}/blob/{repo.get('branch', 'main')}"
            f"/chapters/{chapter}.ipynb")
    colab = [h for h in _parse(HTML / "chapters" / f"{chapter}.html").links if "colab" in h]
    assert colab == [want], f"{chapter}: Colab links {colab}"


# ---- in a real browser ----------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
RAW_TEX = """() => {
  const walker = document.createTreeWalker(document.querySelector('main') || document.body,
                                           NodeFilter.SHOW_TEXT);
  const raw = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (n.parentElement.closest('pre, code, script, style, .highlight, mjx-container')) continue;
    const m = n.textContent.match(/\\\\\\(|\\\\\\[|\\$\\$/);
    if (m) raw.push(n.textContent.trim().slice(0, 60));
  }
  return raw;
}"""


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (make install installs it): browser test skipped")
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed on CI (make browser installs it): the browser test must run")
        pytest.skip("chromium is not installed (make browser installs it with apt-get): "
                    "browser test skipped")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b, f"http://127.0.0.1:{server.server_port}"
        b.close()
    server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.stem)
def test_the_page_loads_cleanly_in_chromium_with_images_and_typeset_maths(browser, page):
    b, base = browser
    tab = b.new_page(viewport={"width": 1280, "height": 900})
    errors, outside = [], []
    tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(str(e)))
    tab.on("request", lambda r: outside.append(r.url)
           if not r.url.startswith((base, "data:", "blob:")) else None)
    tab.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), lambda route: route.abort())
    tab.goto(f"{base}/{page.relative_to(HTML).as_posix()}", wait_until="load")
    if tab.evaluate("() => !!document.querySelector('script[src*=\"mathjax\"]')"):  # pages with maths
        tab.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                              timeout=30_000)
        tab.evaluate("() => MathJax.startup.promise")
    broken = tab.evaluate("() => [...document.images].filter(i => !i.complete || !i.naturalWidth)"
                          ".map(i => i.src)")
    raw = tab.evaluate(RAW_TEX)
    tab.close()
    assert not broken, f"{page.name}: images that did not load: {broken}"
    assert not raw, f"{page.name}: maths left as raw TeX: {raw[:3]}"
    assert not errors, f"{page.name}: console errors: {errors[:3]}"
    assert not outside, f"{page.name}: requests outside the book (offline reader): {outside[:3]}"


# What a reader at a given width sees: elements that stick out of the text column without a
# scroll box of their own around them (MathJax's hidden assistive copy aside), each image's shown
# and natural widths (the width the page gives it: a figure holds twice its pixels, for a sharp
# high-density screen) and whether it can be enlarged (_static/enlarge.js), and where the first
# paragraph of prose and the first visible code cell start.
LAYOUT = """() => {
  const art = document.querySelector('article.bd-article') || document.querySelector('main');
  const right = art.getBoundingClientRect().right + 1;
  const scrolls = el => { for (let p = el.parentElement; p && p !== art; p = p.parentElement) {
      const o = getComputedStyle(p).overflowX; if (o === 'auto' || o === 'scroll') return true; }
    return false; };
  const out = [];
  for (const el of art.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (!r.width || r.right <= right || el.closest('mjx-assistive-mml')) continue;
    if (getComputedStyle(el).visibility === 'hidden' || scrolls(el)) continue;
    out.push(`${el.tagName.toLowerCase()}.${el.className} ends at ${Math.round(r.right)} px: ` +
             (el.textContent || '').trim().slice(0, 50));
  }
  const images = [...art.querySelectorAll('img')].map(i => ({src: i.src.split('/').pop(),
    shown: i.getBoundingClientRect().width, pixels: i.naturalWidth,
    squashed: i.naturalWidth > 0 && Math.abs(i.getBoundingClientRect().height / i.getBoundingClientRect().width
                                             - i.naturalHeight / i.naturalWidth) > 0.02,
    natural: i.style.width.endsWith('px') ? parseFloat(i.style.width) : i.naturalWidth,
    zoom: i.classList.contains('bn-zoomable'),
    hint: !!(i.nextElementSibling && i.nextElementSibling.classList.contains('bn-zoom-hint'))}));
  // a table or an equation in view that scrolls sideways in its box, without the line above it
  // that says so
  const uncued = [...art.querySelectorAll('table, mjx-container[display="true"]')].filter(t =>
    !t.closest('details:not([open])') &&
    t.scrollWidth > t.clientWidth + 1 &&
    !((a => a.previousElementSibling && a.previousElementSibling.classList.contains('bn-scroll-cue'))
      (t.closest('div.math') || t)))
    .map(t => (t.textContent || '').trim().slice(0, 40));
  const visible = el => el.offsetParent !== null && el.getBoundingClientRect().height > 0;
  const para = [...art.querySelectorAll('p')].find(p => visible(p) &&
    !p.closest('.cell, figure, details, table, .admonition') && p.textContent.trim().length > 40);
  const code = [...art.querySelectorAll('div.cell_input, div.cell .highlight')].find(visible);
  const top = el => el ? el.getBoundingClientRect().top + window.scrollY : null;
  return {outside: out.slice(0, 5), uncued, page: document.documentElement.scrollWidth,
          window: window.innerWidth, images, paragraph: top(para), code: top(code)};
}"""


# Each number in the page's text (prose, tables, code, printed lines; not the maths) that a reader
# sees laid out on more than one line ("1.2e-" / "07", "4" / "%"): the same numbers as
# tools/book_html.py's WHOLE_NUMBER, without the range and "±" parts; dates and names are no numbers.
BROKEN_NUMBERS = """() => {
  // A number (with its sign, exponent and unit) laid out on more than one line.
  const root = document.querySelector('article') || document.body;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const NUM = /(?<![\\p{L}\\p{N}_.\\-\\u2212\\u2011])[\\u2212-]?\\d[\\d,]*(?:\\.\\d+)?(?:e[-+\\u2212]?\\d+)?(?:[ \\u00a0\\u202f]?%|x(?![\\p{L}\\p{N}]))?/gu;
  const broken = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest('script, style, mjx-container, .MathJax, svg')) continue;
    if (!el.getClientRects().length) continue;  // not displayed (a closed <details>)
    for (const m of n.textContent.matchAll(NUM)) {
      if (m[0].length < 2) continue;
      const r = document.createRange();
      r.setStart(n, m.index); r.setEnd(n, m.index + m[0].length);
      const tops = new Set([...r.getClientRects()].filter(q => q.width > 0).map(q => Math.round(q.top)));
      if (tops.size > 1) broken.push(m[0] + '  <' + el.tagName.toLowerCase() + '.' + el.className + '>  ' +
                                     n.textContent.slice(Math.max(0, m.index - 30), m.index + m[0].length + 10).replace(/\\s+/g, ' '));
    }
  }
  return broken;
}"""


def _open(browser, page: Path, width: int):
    """Open ``page`` at ``width`` px with its maths typeset and its images loaded."""
    b, base = browser
    tab = b.new_page(viewport={"width": width, "height": 900})
    tab.route(re.compile(r"^https?://(?!127\.0\.0\.1)"), lambda route: route.abort())
    tab.goto(f"{base}/{page.relative_to(HTML).as_posix()}", wait_until="load")
    if tab.evaluate("() => !!document.querySelector('script[src*=\"mathjax\"]')"):
        tab.wait_for_function("() => window.MathJax && MathJax.startup && MathJax.startup.promise",
                              timeout=30_000)
        tab.evaluate("() => MathJax.startup.promise")
    tab.wait_for_function("() => [...document.images].every(i => i.complete)", timeout=30_000)
    tab.wait_for_timeout(100)   # the images' load handlers (_static/enlarge.js) run after that
    return tab


@pytest.mark.parametrize("width", (1280, 390))
@pytest.mark.parametrize("page", _pages(), ids=lambda p: p.stem)
def test_the_page_reads_at_desktop_and_phone_width(browser, page, width):
    tab = _open(browser, page, width)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    tab.screenshot(path=str(SCREENSHOTS / f"{page.stem}-{width}.png"), full_page=True)
    # the page's resize observers (_static/scrollcue.js, enlarge.js) answer in the next frames
    tab.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    seen = tab.evaluate(LAYOUT)
    broken = tab.evaluate(BROKEN_NUMBERS)
    tab.close()
    where = f"{page.name} at {width} px"
    assert seen["page"] <= seen["window"] + 1, f"{where}: the page scrolls sideways"
    assert not seen["outside"], f"{where}: sticks out of the column: {seen['outside']}"
    small = [i for i in seen["images"] if i["natural"] and i["shown"] < 0.6 * i["natural"]
             and not i["zoom"]]
    assert not small, f"{where}: images shown below 0.6 of their size, not enlargeable: {small[:3]}"
    tiny = [i for i in seen["images"] if i["natural"] and i["shown"] < 0.9 * i["natural"] and not i["hint"]]
    assert not tiny, f"{where}: figures shown small with no line saying they enlarge: {tiny[:3]}"
    assert not broken, f"{where}: numbers broken across lines: {broken[:3]}"
    assert not seen["uncued"], f"{where}: tables or equations that scroll sideways without saying so: {seen['uncued'][:3]}"
    squashed = [i for i in seen["images"] if i["squashed"]]
    assert not squashed, f"{where}: figures shown out of their proportions: {squashed[:3]}"
    if width == 1280:   # figures made for the page: natural size, sharp on a high-density screen
        shrunk = [i for i in seen["images"] if i["shown"] < 0.9 * i["natural"]]
        assert not shrunk, f"{where}: figures wider than the column: {shrunk[:3]}"
        coarse = [i for i in seen["images"] if i["pixels"] < 1.9 * i["shown"]]
        assert not coarse, f"{where}: figures of fewer than 2 pixels per shown pixel: {coarse[:3]}"
    if page.stem != "intro":
        assert seen["paragraph"] is not None, f"{where}: no paragraph of prose"
        assert seen["code"] is None or seen["paragraph"] < seen["code"], (
            f"{where}: code is visible before the chapter's first paragraph")
