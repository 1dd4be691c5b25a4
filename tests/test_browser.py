"""The built book as a reader meets it: every page opened in headless Chromium.

The quick build (``built_docs``) is served over http on 127.0.0.1 (``served_site``) and
every HTML page of it is opened in Debian's ``chromium`` driven by Playwright. The checks: no console
error, no failed request and no request leaving the machine (the book reads offline);
every image loads with a non-zero size, has alt text, and the gallery's figures come at
2x on a high-density screen; every internal link, fragment included, resolves; the
gallery pages link to the previous and next page, to the API they use and to their
``.py`` and ``.ipynb`` downloads; no code block of a gallery page is wider than its box at
a 1280 px viewport (a longer line scrolls out of sight); the API pages link back. Screenshots of the landing page
and of one gallery page go to ``MLA_SCREENSHOTS`` (``nox -s docs-check``:
docs/_build/screenshots) or a temporary folder, with ``report.json`` counting what was
checked.

Without Chromium the tests are skipped, except under CI or with ``MLA_REQUIRE_BROWSER=1``.
"""

import json
import os
import re
import shutil
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


@pytest.fixture(scope="module")
def crawl(built_docs, site, browser, screenshots):
    """Open every page of the book once; what each page showed, keyed by its path."""
    pages = sorted(
        p.relative_to(built_docs).as_posix()
        for p in built_docs.rglob("*.html")
        if not p.relative_to(built_docs).parts[0].startswith(("_sources", "_static"))
    )
    # A high-density screen: the figures' 2x variants (srcset) are the ones loaded.
    context = browser.new_context(viewport={"width": 1280, "height": 900}, device_scale_factor=2)
    outside = []

    def block_outside(route):
        outside.append(route.request.url)
        route.abort()

    context.route(
        lambda url: url.startswith(("http:", "https:", "ws:", "wss:")) and not url.startswith(site),
        block_outside,
    )
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
    # The Question 1 page: the first exercise of the lecture, and the model for the others.
    gallery = "auto_examples/01_architecture/plot_03_question1_mnist.html"
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
