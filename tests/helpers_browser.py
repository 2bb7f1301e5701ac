"""Headless Chromium for the tests of pages people read (report.html, the documentation site): Debian's `chromium`
package, which .ci/run installs; tests that need it are skipped where it is missing, and marked slow."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageChops

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = [pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary on PATH (`.ci/run` installs Debian's "
                                                              "chromium package; `apt-get install -y chromium` here)"),
                  pytest.mark.slow]  # a browser: `make test` runs it, `make test-fast` not
WIDTH, HEIGHT = 1280, 2400
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
         "--hide-scrollbars", f"--window-size={WIDTH},{HEIGHT}"]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.glob('profile-*')))}"  # a fresh profile per run
    done = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                          timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done


def blank_rows(image: Image.Image) -> int:
    """The longest run of rows that are one colour (the page's background) from edge to edge."""
    grey = image.convert("L")
    longest = run = 0
    for y in range(grey.height):
        low, high = grey.crop((0, y, grey.width, y + 1)).getextrema()
        run = run + 1 if high - low <= 8 else 0
        longest = max(longest, run)
    return longest


def assert_inked(image: Image.Image) -> None:
    """A screenshot of a page that rendered: the window's size, many colours, ink in every quarter of the first
    screen and no large blank band (a figure that did not render, a collapsed section)."""
    assert image.size == (WIDTH, HEIGHT)
    assert len(image.getcolors(1 << 24)) > 50  # not one colour: text, tables, plots
    background = Image.new("RGB", image.size, image.getpixel((0, 0)))
    inked = ImageChops.difference(image, background).convert("L").point(lambda v: 255 if v > 24 else 0)
    assert inked.getbbox() is not None and sum(inked.histogram()[255:]) > 0.02 * WIDTH * HEIGHT
    for top in range(0, HEIGHT, HEIGHT // 4):  # every quarter of the first screen holds something
        assert inked.crop((0, top, WIDTH, top + HEIGHT // 4)).getbbox() is not None, f"blank from y={top}"
    assert blank_rows(image) < HEIGHT // 6


def requires_chromium(function):
    """`needs_chromium`'s marks on one test function (skipped without a browser, and slow)."""
    for mark in needs_chromium:
        function = mark(function)
    return function
