"""Every page draws its figures in the book's style, with colour-blind-safe colours."""

import re
from pathlib import Path

import matplotlib as mpl
import pytest

from mla_course import plots

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "gallery").rglob("plot_*.py"))
SOURCES = SCRIPTS + sorted((ROOT / "mla_course").rglob("*.py"))
# Colour maps that readers with a colour-vision deficiency cannot read reliably
# (rainbow-like hues, no monotonic lightness).
UNSAFE_CMAPS = {
    "jet",
    "rainbow",
    "gist_rainbow",
    "hsv",
    "nipy_spectral",
    "gist_ncar",
    "turbo",
    "prism",
    "flag",
    "Spectral",
    "gist_stern",
    "brg",
    "CMRmap",
}
SAFE_IMAGE_CMAPS = {"viridis", "cividis", "magma", "inferno", "plasma", "gray", "Greys"}


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.stem for s in SCRIPTS])
def test_every_page_uses_the_book_style(script):
    assert re.search(r"\buse_style\(\)", script.read_text()), (
        f"{script.name} does not call mla_course.plots.use_style(): its figures would not "
        "look like the other pages'"
    )


@pytest.mark.parametrize("source", SOURCES, ids=[s.name for s in SOURCES])
def test_no_colour_map_that_colour_blind_readers_cannot_read(source):
    names = set(re.findall(r"""cmap\s*=\s*["']([A-Za-z_]+?)(?:_r)?["']""", source.read_text()))
    names |= set(
        re.findall(r"""(?:colormaps|cm)\[["']([A-Za-z_]+?)(?:_r)?["']\]""", source.read_text())
    )
    unsafe = names & UNSAFE_CMAPS
    assert not unsafe, (
        f"{source.relative_to(ROOT)} uses {sorted(unsafe)}; use viridis or cividis "
        "(sequential), RdBu_r or PuOr (signed)"
    )


def test_the_style_sets_colour_blind_safe_colours():
    with mpl.rc_context():
        plots.use_style()
        cycle = [c.lower() for c in mpl.rcParams["axes.prop_cycle"].by_key()["color"]]
        assert cycle == [c.lower() for c in plots.OKABE_ITO]
        assert mpl.rcParams["image.cmap"] in SAFE_IMAGE_CMAPS
