"""The built book as a reader meets it: every page opened in headless Chromium.

The quick build (``built_docs``) is served over http on 127.0.0.1 (``served_site``) and
every HTML page of it is opened in Debian's ``chromium`` driven by Playwright. The checks: no console
error, no failed request and no request leaving the machine (the book reads offline);
every image loads with a non-zero size, has alt text, and the gallery's figures come at
2x on a high-density screen; every internal link, fragment included, resolves; the
gallery pages link to the previous and next page, to the API they use and to their
``.py`` and ``.ipynb`` downloads; no code block of a gallery page is wider than its box at
a 1280 px viewport (a longer line scrolls out of sight); the API pages link back. On a
390 px phone no page scrolls sideways (a code box may scroll inside itself); printed,
a page shows its content and none of the navigation; the theme's dark mode applies; and
axe-core (``axe-playwright-python``) finds no serious or critical accessibility violation
in the book's content, the theme's and extensions' known ones being listed in
``KNOWN_VIOLATIONS`` with their reasons. Screenshots of the landing page and of one
gallery page (light, dark and phone) and the print PDFs go to ``MLA_SCREENSHOTS``
(``nox -s docs-check``: docs/_build/screenshots) or a temporary folder, with
``report.json`` counting what was checked and ``accessibility.json`` what axe found.

Without Chromium the tests are skipped, except under CI or with ``MLA_REQUIRE_BROWSER=1``."""

import json
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "gallery").rglob("plot_*.py"))
CHROMIUM = os.environ.get("MLA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Sphinx's pages that hold no content of the book: searched and indexed, not read.
NOT_CONTENT = {"search.html", "genindex.html", "py-modindex.html"}
# The page the screenshots, the print and the dark-mode checks read: the Question 1 page,
# the first exercise of the lecture and the model for the others.
GALLERY_PAGE = "auto_examples/01_architecture/plot_03_question1_mnist.html"
# A phone held upright (the width of an iPhone 12 to 15), as Chromium emulates it.
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 3,
    "is_mobile": True,
    "has_touch": True,
}
# An A4 sheet at 96 px per inch, the width a browser lays a printed page out in.
A4 = {"width": 794, "height": 1123}

pytestmark = pytest.mark.slow


def _browser_or_skip():
    required = os.environ.get("CI") or os.environ.get("MLA_REQUIRE_BROWSER")
    missing = []
    if not Path(CHROMIUM).is_file():
        missing.append(f"Chromium ({CHROMIUM}; on Debian: apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the playwright package (the 'test' dependency group)")
    if missing:
        message = "the browser check needs " + " and ".join(missing)
        if required:
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture(scope="module")
def site(served_site):
    """The built book served over http on 127.0.0.1 (tests/conftest.py)."""
    return served_site


@pytest.fixture(scope="module")
def browser():
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    given = os.environ.get("MLA_SCREENSHOTS")
    if not given:
        return tmp_path_factory.mktemp("screenshots")
    path = Path(given) if Path(given).is_absolute() else ROOT / given
    path.mkdir(parents=True, exist_ok=True)
    return path


# Runs in the page once it has loaded: lazy images are made eager and awaited, then every
# image, link and element id is read.
_READ_PAGE = """async () => {
  const images = Array.from(document.images);
  for (const img of images) { if (img.loading === "lazy") img.loading = "eager"; }
  await Promise.all(images.map((img) => img.decode().catch(() => null)));
  return {
    title: document.title,
    ids: Array.from(document.querySelectorAll("[id]"), (e) => e.id)
      .concat(Array.from(document.querySelectorAll("a[name]"), (e) => e.name)),
    links: Array.from(document.querySelectorAll("a[href]"), (a) => ({
      href: a.href, cls: a.className, rel: a.getAttribute("rel") || "",
      text: a.textContent.trim().slice(0, 80),
      inPrevNext: a.closest(".prev-next-area") !== null,
      inMiniGallery: a.closest(".sphx-glr-thumbnails") !== null,
    })),
    images: images.map((img) => ({
      src: img.getAttribute("src"), current: img.currentSrc, alt: img.getAttribute("alt"),
      inThumbnail: img.closest(".sphx-glr-thumbcontainer") !== null,
      complete: img.complete, width: img.naturalWidth, height: img.naturalHeight,
      gallery: img.classList.contains("sphx-glr-single-img")
        || img.classList.contains("sphx-glr-multi-img"),
    })),
    wideBlocks: WIDE_BLOCKS(),
  };
}"""
# The code blocks whose content is wider than their box (they scroll sideways), each with
# its first line that does not fit, measured in the block's own font.
_WIDE_BLOCKS = """() => {
  const canvas = document.createElement("canvas").getContext("2d");
  return Array.from(document.querySelectorAll("div.highlight pre"))
    .filter((pre) => pre.scrollWidth > pre.clientWidth)
    .map((pre) => {
      const style = getComputedStyle(pre);
      canvas.font = style.font;
      const room = pre.clientWidth - parseFloat(style.paddingLeft)
        - parseFloat(style.paddingRight);
      const lines = pre.textContent.split("\\n");
      const line = lines.find((l) => canvas.measureText(l).width > room)
        ?? lines.reduce((a, b) => (b.length > a.length ? b : a), "");
      return {
        output: pre.closest(".sphx-glr-script-out") !== null,
        line, chars: line.length,
        scrollWidth: pre.scrollWidth, clientWidth: pre.clientWidth,
      };
    });
}"""
_READ_PAGE = _READ_PAGE.replace("WIDE_BLOCKS()", f"({_WIDE_BLOCKS})()")


def _pages(built_docs: Path) -> list[str]:
    """Every HTML page of the built book, as paths relative to its root."""
    return sorted(
        p.relative_to(built_docs).as_posix()
        for p in built_docs.rglob("*.html")
        if not p.relative_to(built_docs).parts[0].startswith(("_sources", "_static"))
    )


def _offline(context, site: str) -> list[str]:
    """Abort every request of ``context`` that leaves the site; the list of those aborted."""
    outside = []

    def block_outside(route):
        outside.append(route.request.url)
        route.abort()

    context.route(
        lambda url: url.startswith(("http:", "https:", "ws:", "wss:")) and not url.startswith(site),
        block_outside,
    )
    return outside


@pytest.fixture(scope="module")
def crawl(built_docs, site, browser, screenshots):
    """Open every page of the book once; what each page showed, keyed by its path."""
    pages = _pages(built_docs)
    # A high-density screen: the figures' 2x variants (srcset) are the ones loaded.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=2)
    outside = _offline(context, site)
    seen = {}
    for rel in pages:
        page = context.new_page()
        problems = []
        page.on(
            "console",
            lambda msg, problems=problems: (
                msg.type == "error" and problems.append(f"console error: {msg.text}")
            ),
        )
        page.on("pageerror", lambda err, problems=problems: problems.append(f"script error: {err}"))
        page.on(
            "requestfailed",
            lambda req, problems=problems: problems.append(
                f"request failed: {req.url} ({req.failure})"
            ),
        )
        page.on(
            "response",
            lambda resp, problems=problems: (
                resp.status >= 400 and problems.append(f"HTTP {resp.status}: {resp.url}")
            ),
        )
        response = page.goto(site + rel, wait_until="load")
        if response is None or response.status != 200:
            problems.append(f"the page answered {response and response.status}")
        page.wait_for_load_state("networkidle")
        info = page.evaluate(_READ_PAGE)
        info["problems"] = problems
        seen[rel] = info
        page.close()
    context.close()

    links = [link for info in seen.values() for link in info["links"]]
    report = {
        "site": str(built_docs),
        "pages": len(seen),
        "gallery_pages": sum(1 for p in seen if _is_gallery_page(p)),
        "images": sum(len(info["images"]) for info in seen.values()),
        "distinct_images": len(
            {urldefrag(i["current"])[0] for info in seen.values() for i in info["images"]}
        ),
        "links": len(links),
        "internal_links": sum(1 for link in links if link["href"].startswith(site)),
        "distinct_internal_targets": len(
            {link["href"] for link in links if link["href"].startswith(site)}
        ),
        "external_links_not_followed": len(
            {link["href"] for link in links if not link["href"].startswith(site)}
        ),
        "requests_blocked_outside": sorted(set(outside)),
    }
    (screenshots / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return {"site": site, "pages": seen, "outside": outside, "report": report}


def _is_gallery_page(rel: str) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return rel.startswith("auto_examples/") and name.startswith("plot_")


def test_every_page_loads_without_errors(crawl, built_docs):
    assert crawl["report"]["pages"] >= 10, crawl["report"]
    errors = [f"{rel}: {p}" for rel, info in crawl["pages"].items() for p in info["problems"]]
    for script in SCRIPTS:
        rel = script.relative_to(ROOT / "gallery").with_suffix(".html").as_posix()
        if f"auto_examples/{rel}" not in crawl["pages"]:
            errors.append(f"no page for {script.name} in the built book")
    errors += [f"fetched from outside the machine: {url}" for url in crawl["outside"]]
    assert not errors, "\n".join(errors[:40])


def test_every_image_loads_with_alt_text_and_at_2x(crawl):
    bad = []
    for rel, info in crawl["pages"].items():
        for img in info["images"]:
            if not img["complete"] or img["width"] == 0 or img["height"] == 0:
                bad.append(f"{rel}: image {img['src']} did not load")
            # A thumbnail's alt="" is right: the link under it names the page.
            if img["alt"] is None or not (img["alt"].strip() or img["inThumbnail"]):
                bad.append(f"{rel}: image {img['src']} has no alt text")
            stem = rel.rsplit("/", 1)[-1].removesuffix(".html")
            if img["gallery"] and (img["alt"] or "").strip() == re.sub(r"[-,_]", " ", stem):
                bad.append(f"{rel}: figure {img['src']} has no title, so no alt text but its name")
            if img["gallery"] and "_2_00x" not in img["current"]:
                bad.append(f"{rel}: figure {img['src']} has no 2x variant ({img['current']})")
    assert not bad, "\n".join(bad[:40])
    figures = [
        i for p, info in crawl["pages"].items() if _is_gallery_page(p) for i in info["images"]
    ]
    assert figures, "no figure on any gallery page"


def test_every_internal_link_resolves(crawl, built_docs):
    site, pages = crawl["site"], crawl["pages"]
    ids = {rel: set(info["ids"]) for rel, info in pages.items()}
    broken = []
    for rel, info in pages.items():
        for link in info["links"]:
            if not link["href"].startswith(site):
                continue
            url, fragment = urldefrag(link["href"])
            target = unquote(urlsplit(url).path).lstrip("/")
            path = built_docs / target
            if path.is_dir():
                target, path = f"{target.rstrip('/')}/index.html".lstrip("/"), path / "index.html"
            if not path.is_file():
                broken.append(f"{rel}: link {link['href']!r} ({link['text']!r}): no such file")
            elif fragment and target in ids and unquote(fragment) not in ids[target]:
                broken.append(f"{rel}: link {link['href']!r} ({link['text']!r}): no such anchor")
    assert not broken, "\n".join(sorted(set(broken))[:40])


def test_gallery_pages_link_previous_next_api_and_downloads(crawl):
    site, pages = crawl["site"], crawl["pages"]
    gallery = [rel for rel in pages if _is_gallery_page(rel)]
    assert gallery
    for rel in gallery:
        links = pages[rel]["links"]
        prev_next = [link for link in links if link["inPrevNext"]]
        assert len(prev_next) == 2, f"{rel}: expected previous and next links, got {prev_next}"
        api = {link["href"] for link in links if link["href"].startswith(site + "api/mla_course.")}
        assert api, f"{rel}: links to no page of the API it uses"
        hrefs = [link["href"] for link in links]
        stem = rel.rsplit("/", 1)[-1].removesuffix(".html")
        for ext in (".py", ".ipynb"):
            assert any(h.endswith(f"/{stem}{ext}") for h in hrefs), f"{rel}: no {ext} download"


def test_no_gallery_code_block_is_wider_than_its_box(crawl):
    """At a 1280 px viewport every line of a gallery page's code and output fits its box."""
    wide = [
        f"{rel}: {'output' if b['output'] else 'code'} block {b['scrollWidth']} px wide in "
        f"{b['clientWidth']} px; first line that does not fit ({b['chars']} chars): "
        f"{b['line']!r}"
        for rel, info in crawl["pages"].items()
        if _is_gallery_page(rel)
        for b in info["wideBlocks"]
    ]
    assert not wide, f"{len(wide)} code blocks scroll sideways:\n" + "\n".join(wide[:40])


def test_api_pages_link_back_to_the_pages_that_use_them(crawl):
    site, pages = crawl["site"], crawl["pages"]
    back = {
        rel: {
            link["href"]
            for link in info["links"]
            if link["inMiniGallery"] and _is_gallery_page(link["href"].removeprefix(site))
        }
        for rel, info in pages.items()
        if rel.startswith("api/mla_course.")
    }
    assert back, "no API page"
    for module in ("api/mla_course.runs.html", "api/mla_course.plots.html"):
        assert back.get(module), f"{module} links back to no gallery page"


def test_screenshots_of_the_landing_page_and_a_gallery_page(site, browser, screenshots):
    gallery = GALLERY_PAGE
    shots = {
        "landing.png": ("index.html", True),
        "gallery_top.png": (gallery, False),
        "gallery_full.png": (gallery, True),
        "questions.png": ("questions.html", False),
    }
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    for name, (rel, full_page) in shots.items():
        page = context.new_page()
        response = page.goto(site + rel, wait_until="networkidle")
        assert response is not None and response.status == 200, f"{rel} did not load"
        page.evaluate("document.fonts.ready")
        page.screenshot(path=screenshots / name, full_page=full_page)
        page.close()
        assert (screenshots / name).stat().st_size > 20_000, f"{name} looks empty"
    context.close()


def test_questions_page_links_each_question_to_an_experiment(crawl):
    site, pages = crawl["site"], crawl["pages"]
    assert "questions.html" in pages, "no page gathering the lecture's questions"
    answers = {
        link["href"].split("#")[0].removeprefix(site)
        for link in pages["questions.html"]["links"]
        if _is_gallery_page(link["href"].removeprefix(site))
    }
    assert answers, "the questions page links to no gallery page"
    assert "auto_examples/01_architecture/plot_03_question1_mnist.html" in answers
    landing = {link["href"].removeprefix(site) for link in pages["index.html"]["links"]}
    assert "questions.html" in landing, "the landing page does not link the questions page"


# --------------------------------------------------------------------------- on a phone
# Runs in a page laid out on the phone: how wide the page is against the screen, and the
# elements that make it wider. An element counts if it reaches past the right edge of the
# screen, or if its own content (a long word, a wide table) overflows it, and no box
# around it scrolls or clips: a code box that scrolls inside itself is fine. The innermost
# such elements are the causes (their ancestors overflow because of them), each named by
# the block that holds it.
_PAGE_WIDTH = """() => {
  const root = document.documentElement;
  const width = root.clientWidth;
  const clipped = (el) => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== "visible") return true;
    }
    return false;
  };
  const name = (el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "")
    + Array.from(el.classList, (c) => "." + c).join("");
  const wide = [];
  for (const el of document.body.querySelectorAll("*")) {
    const style = getComputedStyle(el);
    if (style.position === "fixed") continue;  // follows the screen, e.g. the skip link
    const box = el.getBoundingClientRect();
    if (box.width === 0 || box.height === 0) continue;
    const past = box.right > width + 1;
    const spills = style.overflowX === "visible" && el.scrollWidth > el.clientWidth + 1
      && el.clientWidth > 0 && box.left + el.scrollWidth > width + 1;
    if ((past || spills) && !clipped(el)) wide.push(el);
  }
  // The innermost ones, each named by the block that holds it (a table, a signature...).
  const innermost = wide.filter((el) => !wide.some((o) => o !== el && el.contains(o)));
  const blocks = [];
  for (const el of innermost) {
    const block = el.closest("table, dt, pre, h1, h2, h3, h4, h5, h6, li, p") || el;
    if (!blocks.includes(block)) blocks.push(block);
  }
  return {
    scrollWidth: root.scrollWidth, width,
    culprits: blocks.slice(0, 6).map((el) => ({
      element: name(el), right: Math.round(el.getBoundingClientRect().left + el.scrollWidth),
      text: el.textContent.trim().replace(/\\s+/g, " ").slice(0, 60),
    })),
  };
}"""


# Resolves once the fonts are in and MathJax has typeset the page, which may widen it.
_LAID_OUT = "async () => { await document.fonts.ready; await window.MathJax?.startup?.promise; }"


@pytest.fixture(scope="module")
def phone_crawl(built_docs, site, browser, screenshots):
    """Every page laid out on a 390 px phone: its width and what makes it wider."""
    context = browser.new_context(**PHONE)
    _offline(context, site)
    seen = {}
    for rel in _pages(built_docs):
        page = context.new_page()
        page.goto(site + rel, wait_until="networkidle")
        page.evaluate(_LAID_OUT)
        seen[rel] = page.evaluate(_PAGE_WIDTH)
        if rel == GALLERY_PAGE:
            page.screenshot(path=screenshots / "phone_gallery_top.png")
        page.close()
    context.close()
    return seen


def test_no_page_scrolls_sideways_on_a_phone(phone_crawl, screenshots):
    """At 390 px every page fits the screen's width; only code boxes may scroll inside."""
    assert len(phone_crawl) >= 10
    wide = {rel: info for rel, info in phone_crawl.items() if info["scrollWidth"] > info["width"]}
    (screenshots / "phone.json").write_text(
        json.dumps({"pages": len(phone_crawl), "wider_than_the_phone": wide}, indent=2) + "\n"
    )
    lines = [
        f"{rel}: {info['scrollWidth']} px wide on a {info['width']} px screen, because of "
        + "; ".join(f"{c['element']} (to {c['right']} px: {c['text']!r})" for c in info["culprits"])
        for rel, info in sorted(wide.items())
    ]
    assert not wide, f"{len(wide)} of {len(phone_crawl)} pages scroll sideways:\n" + "\n".join(
        lines[:40]
    )
    assert (screenshots / "phone_gallery_top.png").stat().st_size > 20_000


# ------------------------------------------------------------------------------ printed
# Runs in a page laid out for print: the article's box and text, and the box of each part
# of the theme's navigation.
_PRINT_LAYOUT = """() => {
  const root = document.documentElement;
  const box = (el) => {
    if (!el) return null;
    const r = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    const shown = style.display !== "none" && style.visibility !== "hidden"
      && r.width > 0 && r.height > 0;
    return {shown, left: Math.round(r.left), right: Math.round(r.right),
            width: Math.round(r.width), height: Math.round(r.height)};
  };
  const article = document.querySelector("article.bd-article");
  const navigation = {};
  for (const sel of [".bd-header", ".bd-sidebar-primary", ".bd-sidebar-secondary",
                     ".header-article", ".prev-next-area", ".bd-footer"]) {
    navigation[sel] = box(document.querySelector(sel));
  }
  return {
    width: root.clientWidth, scrollWidth: root.scrollWidth, article: box(article),
    text: article ? article.innerText.trim().length : 0,
    images: article ? Array.from(article.querySelectorAll("img"), box).filter((b) => b.shown).length : 0,
    navigation,
  };
}"""


@pytest.mark.parametrize("rel", ["index.html", GALLERY_PAGE])
def test_printed_page_shows_the_content_and_no_navigation(site, browser, screenshots, rel):
    """Printed (print media, an A4 width), a page is its article: no sidebar beside it."""
    context = browser.new_context(viewport=A4)
    _offline(context, site)
    page = context.new_page()
    response = page.goto(site + rel, wait_until="networkidle")
    assert response is not None and response.status == 200, f"{rel} did not load"
    page.emulate_media(media="print")
    layout = page.evaluate(_PRINT_LAYOUT)
    stem = rel.rsplit("/", 1)[-1].removesuffix(".html")
    pdf = screenshots / f"print_{stem}.pdf"
    page.pdf(path=pdf, format="A4", print_background=True)
    context.close()

    article = layout["article"]
    assert article and article["shown"], f"{rel}: no article printed: {layout}"
    assert layout["text"] > 500, f"{rel}: the printed article holds {layout['text']} characters"
    assert article["width"] >= 0.7 * layout["width"], (
        f"{rel}: the printed article takes {article['width']} of {layout['width']} px"
    )
    assert layout["scrollWidth"] <= layout["width"], (
        f"{rel}: printed, the page is {layout['scrollWidth']} px wide on a {layout['width']} px sheet"
    )
    beside = [
        f"{sel} ({b['left']}-{b['right']} px)"
        for sel, b in layout["navigation"].items()
        if b and b["shown"] and sel in (".bd-sidebar-primary", ".bd-sidebar-secondary")
    ]
    assert not beside, f"{rel}: printed with its navigation beside the article: {beside}"
    if rel == GALLERY_PAGE:
        assert layout["images"] > 0, f"{rel}: printed without its figures"
    assert pdf.stat().st_size > 20_000, f"{pdf.name} looks empty"


# ---------------------------------------------------------------------------- dark mode
# pydata-sphinx-theme keeps the reader's choice in localStorage ("mode": light, dark or
# auto, and "theme", the one applied) and sets <html data-mode data-theme> from it.
_DARK_MODE = 'localStorage.setItem("mode", "dark"); localStorage.setItem("theme", "dark");'
# Runs in a page: the theme applied, the page's colours and, for each gallery figure,
# whether its corner is an opaque light pixel (a white figure on the dark page).
_DARK_READ = """async () => {
  const rgb = (c) => (c.match(/[\\d.]+/g) || []).slice(0, 3).map(Number);
  const luminance = (c) => {
    const [r, g, b] = rgb(c).map((v) => v / 255);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const figures = Array.from(document.querySelectorAll("img.sphx-glr-single-img, img.sphx-glr-multi-img"));
  await Promise.all(figures.map((img) => img.decode().catch(() => null)));
  const canvas = document.createElement("canvas");
  canvas.width = canvas.height = 1;
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  const white = figures.filter((img) => {
    ctx.clearRect(0, 0, 1, 1);
    ctx.drawImage(img, 0, 0, 1, 1, 0, 0, 1, 1);
    const [r, g, b, a] = ctx.getImageData(0, 0, 1, 1).data;
    return a > 250 && r > 230 && g > 230 && b > 230;
  }).length;
  const body = getComputedStyle(document.body);
  return {
    mode: document.documentElement.dataset.mode, theme: document.documentElement.dataset.theme,
    background: luminance(body.backgroundColor), text: luminance(body.color),
    figures: figures.length, white_figures: white,
  };
}"""


def test_dark_mode_applies_and_is_screenshotted(site, browser, screenshots):
    """The theme's dark mode, as a reader who chose it sees a gallery page."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, color_scheme="dark")
    _offline(context, site)
    context.add_init_script(_DARK_MODE)
    page = context.new_page()
    response = page.goto(site + GALLERY_PAGE, wait_until="networkidle")
    assert response is not None and response.status == 200, f"{GALLERY_PAGE} did not load"
    page.evaluate("document.fonts.ready")
    seen = page.evaluate(_DARK_READ)
    page.screenshot(path=screenshots / "dark_gallery_top.png")
    page.screenshot(path=screenshots / "dark_gallery_full.png", full_page=True)
    context.close()
    (screenshots / "dark_mode.json").write_text(json.dumps(seen, indent=2) + "\n")
    assert seen["mode"] == "dark" and seen["theme"] == "dark", seen
    assert seen["background"] < 0.2 and seen["text"] > 0.6, f"not a dark page: {seen}"
    for name in ("dark_gallery_top.png", "dark_gallery_full.png"):
        assert (screenshots / name).stat().st_size > 20_000, f"{name} looks empty"


# ------------------------------------------------------------------------ accessibility
@dataclass(frozen=True)
class Known:
    """A serious violation that comes from the theme or an extension, not the book's text."""

    rule: str  # the axe rule id
    within: str  # a CSS selector: the offending element matches it or lies inside it
    reason: str


# Checked against axe-core 4.12 (axe-playwright-python 0.1.8), pydata-sphinx-theme 0.20,
# sphinx-book-theme 1.4, sphinx-gallery 0.22 and docutils 0.22. Anything else serious or
# critical fails the test; an entry that no longer matches is reported in
# accessibility.json ("known_unmatched"), to be removed.
KNOWN_VIOLATIONS = (
    Known(
        "summary-name",
        ".bd-sidebar-primary details > summary",
        "pydata-sphinx-theme: the toggles that fold the navigation sidebar's sections are "
        "<summary> elements holding only a chevron icon, with no accessible name",
    ),
    Known(
        "link-name",
        ".sphx-glr-thumbcontainer a.reference.internal",
        "sphinx-gallery: its sg_gallery.css hides the text of each thumbnail's link "
        "(display: none), so the link has no accessible name; the title is shown beside it",
    ),
    Known(
        "color-contrast",
        "a.viewcode-back",
        "Sphinx's viewcode [docs] links on the source pages: the theme's link colour "
        "#176de8 on its code background #f3f4f5 is 4.34:1, under the 4.5:1 of WCAG AA",
    ),
    Known(
        "aria-required-children",
        "div.citation-list",
        "docutils writes a bibliography as role=list with role=doc-biblioentry entries, a "
        "role WAI-ARIA 1.3 deprecates, so axe finds no list items in the list",
    ),
)
SERIOUS = ("serious", "critical")
# Sphinx's viewcode pages are listings of the package's source, one like the other: one
# is scanned (axe's colour check takes seconds on a page of highlighted code).
SOURCE_SAMPLE = "_modules/mla_course/optim.html"

# Runs in a page after axe: for each offending node (its CSS selector in the top document),
# the index of the first known entry it falls under, or -1.
_MATCH_KNOWN = """([nodes, known]) => nodes.map(([rule, target]) => {
  let el = null;
  try { el = document.querySelector(target); } catch (e) { return -1; }
  if (!el) return -1;
  return known.findIndex(([r, within]) => r === rule && el.closest(within) !== null);
})"""


def _axe_pages(built_docs: Path) -> list[str]:
    return [
        rel
        for rel in _pages(built_docs)
        if rel not in NOT_CONTENT and (not rel.startswith("_modules/") or rel == SOURCE_SAMPLE)
    ]


@pytest.fixture(scope="module")
def accessibility(built_docs, site, browser, screenshots):
    """axe-core run on every page of the book; each violation node, known or not."""
    try:
        from axe_playwright_python.sync_playwright import Axe
    except ImportError:
        message = "the accessibility check needs axe-playwright-python (the 'test' group)"
        if os.environ.get("CI") or os.environ.get("MLA_REQUIRE_BROWSER"):
            pytest.fail(message)
        pytest.skip(message)
    axe = Axe()  # its axe.min.js ships in the wheel: nothing is fetched
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    _offline(context, site)
    known = [[k.rule, k.within] for k in KNOWN_VIOLATIONS]
    nodes = []
    pages = _axe_pages(built_docs)
    for rel in pages:
        page = context.new_page()
        page.goto(site + rel, wait_until="networkidle")
        results = axe.run(page, options={"resultTypes": ["violations"]}).response
        found = [
            # a node inside a frame or a shadow root has a path of selectors: not matched
            (v, n, n["target"][0] if len(n["target"]) == 1 else "")
            for v in results["violations"]
            for n in v["nodes"]
        ]
        match = page.evaluate(_MATCH_KNOWN, [[[v["id"], t] for v, _, t in found], known])
        nodes += [
            {
                "page": rel,
                "rule": v["id"],
                "impact": v["impact"],
                "help": v["help"],
                "target": " ".join(map(str, n["target"])),
                "html": n["html"][:200],
                "known": KNOWN_VIOLATIONS[i].reason if i >= 0 else None,
            }
            for (v, n, _), i in zip(found, match, strict=True)
        ]
        page.close()
    context.close()

    by_rule = {}
    for node in nodes:
        entry = by_rule.setdefault(
            node["rule"], {"impact": node["impact"], "pages": set(), "nodes": 0, "known": 0}
        )
        entry["pages"].add(node["page"])
        entry["nodes"] += 1
        entry["known"] += node["known"] is not None
    matched = {node["known"] for node in nodes}
    report = {
        "pages": len(pages),
        "pages_not_scanned": sorted(set(_pages(built_docs)) - set(pages)),
        "by_impact": dict(Counter(node["impact"] for node in nodes)),
        "by_rule": {
            rule: {**entry, "pages": len(entry["pages"])} for rule, entry in sorted(by_rule.items())
        },
        "known_unmatched": [k.rule for k in KNOWN_VIOLATIONS if k.reason not in matched],
        "serious_unknown": [n for n in nodes if n["impact"] in SERIOUS and n["known"] is None],
    }
    (screenshots / "accessibility.json").write_text(json.dumps(report, indent=2) + "\n")
    return {"pages": pages, "nodes": nodes, "report": report}


def test_no_serious_accessibility_violation_in_the_books_content(accessibility):
    """axe finds nothing serious or critical but the theme's and extensions' known issues."""
    assert len(accessibility["pages"]) >= 10, accessibility["report"]
    bad = accessibility["report"]["serious_unknown"]
    counts = Counter((n["rule"], n["impact"]) for n in bad)
    summary = ", ".join(f"{rule} ({impact}): {c}" for (rule, impact), c in counts.most_common())
    lines = [f"{n['page']}: {n['rule']} ({n['impact']}) at {n['target']}: {n['html']}" for n in bad]
    assert not bad, (
        f"{len(bad)} serious or critical accessibility violations ({summary}); "
        "if one comes from the theme or an extension, add it to KNOWN_VIOLATIONS with its "
        "reason:\n" + "\n".join(lines[:40])
    )
