"""report.html in a real browser: headless Chromium (Debian's `chromium` package; .ci/run installs it) loads the page
built from a hand-made results store, a small script writes its checks into the DOM (every image decoded, no element
wider than the page, the sections in order), and a screenshot is inspected for blank regions."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from PIL import Image
from stores import CLASSES, write_generation
from test_report import write_experiment

from helpers_browser import assert_inked, chromium, needs_chromium
from synthbridge.reporting import build_report

pytestmark = needs_chromium
# Run after the page has loaded (data-URI images are decoded by then): the checks go into <pre id="checks">.
CHECKS = """<script>
window.addEventListener("load", () => {
  const width = document.documentElement.clientWidth;
  const images = [...document.images];
  const inScroller = el => {
    for (let p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      if (["auto", "scroll", "hidden"].includes(getComputedStyle(p).overflowX)) return true;
    }
    return false;
  };
  const wide = [...document.body.querySelectorAll("*")]
    .filter(el => el.getBoundingClientRect().right > width + 1 && !inScroller(el))
    .map(el => el.tagName + ":" + el.textContent.slice(0, 40));
  const checks = {images: images.length, decoded: images.filter(i => i.complete && i.naturalWidth > 0).length,
                  width: width, pageWidth: document.documentElement.scrollWidth, wide: wide,
                  headings: [...document.querySelectorAll("h2")].map(h => h.textContent)};
  const out = document.createElement("pre");
  out.id = "checks";
  out.textContent = JSON.stringify(checks);
  document.body.appendChild(out);
});
</script>"""


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    """A report with every section filled: answer, advisor (with a generation speed), per-class effects with a
    recorded fidelity, the plots and the sample grids."""
    from synthbridge.data import load_dataset

    root = tmp_path_factory.mktemp("browser")
    exp = write_experiment(root / "exp", load_dataset("digits").classes, sets=("digits", "digits-dsi"))
    write_generation(exp, "digits", per_class=16, generated=160, seconds=16.0)
    (exp / "analysis").mkdir()
    (exp / "analysis" / "fidelity-digits.json").write_text(json.dumps({"per_class": {c: 90.0 for c in CLASSES}}))
    build_report(exp)
    return exp / "report.html"


def _checks(page: str, tmp_path: Path) -> dict:
    """The check script's findings for `page` (HTML text), loaded from a file in headless Chromium."""
    checked = tmp_path / "checked.html"
    checked.write_text(page.replace("</body>", CHECKS + "</body>"), encoding="utf-8")
    dom = chromium(tmp_path, "--virtual-time-budget=10000", "--dump-dom", checked.as_uri()).stdout
    found = re.search(r'<pre id="checks">(.*?)</pre>', dom, re.S)
    assert found, "the check script did not run: " + dom[-500:]
    return json.loads(html.unescape(found.group(1)))


def test_the_checks_catch_a_broken_image_and_an_overflowing_element(tmp_path):
    page = ('<!doctype html><html><body><img src="data:image/png;base64,AAAA"><div style="width:3000px">wide</div>'
            '<table style="display:block;overflow-x:auto"><tr><td style="min-width:3000px">scrolls</td></tr></table>'
            '</body></html>')
    checks = _checks(page, tmp_path)
    assert checks["images"] == 1 and checks["decoded"] == 0
    assert checks["wide"] == ["DIV:wide"]  # the table scrolls inside its own box: not an overflow of the page


def test_every_image_decodes_and_nothing_is_wider_than_the_page(report, tmp_path):
    page = report.read_text(encoding="utf-8")
    checks = _checks(page, tmp_path)
    assert checks["images"] == page.count("<img ") == 4
    assert checks["decoded"] == checks["images"]  # every embedded PNG decoded, with a width
    assert checks["wide"] == [] and checks["pageWidth"] <= checks["width"]  # no horizontal overflow of the page
    assert checks["headings"][:4] == ["The answer: should synthetic images be used here, and how?", "Findings of the study",
                                      "Volume advisor: will the next doubling of synthetic images pay?",
                                      "Per-class effects of the best way found"]


def test_the_screenshot_is_not_blank(report, tmp_path):
    shot = tmp_path / "report.png"
    chromium(tmp_path, f"--screenshot={shot}", report.as_uri())
    assert_inked(Image.open(shot).convert("RGB"))
