"""The documentation: the README is a first screen (at most ~200 lines) whose links reach the site's pages; the site
(MkDocs Material, the API from docstrings) builds with --strict; its home page and a command page render in headless
Chromium."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from helpers_browser import HEIGHT, WIDTH, assert_inked, chromium, requires_chromium

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("generate", "invert", "lora", "train", "gap", "run", "report", "advise")


def test_the_readme_is_a_first_screen_whose_links_reach_the_site():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    links = re.findall(r"\]\(([^)#]+\.md)(?:#[^)]*)?\)", readme)
    assert {f"docs/commands/{name}.md" for name in COMMANDS} <= set(links)
    assert all((ROOT / link).is_file() for link in links), [link for link in links if not (ROOT / link).is_file()]
    for page in ("study", "methods", "results", "full-scale", "performance", "architecture", "api"):
        assert f"docs/{page}.md" in links, page


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("site") / "site"
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return out


@pytest.mark.slow
def test_the_site_builds_strictly_with_a_page_per_command_and_the_api(site):
    for name in COMMANDS:
        assert (site / "commands" / name / "index.html").is_file(), name
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("generate", "invert", "lora", "train", "run", "report", "advise"):
        assert f'id="synthbridge.api.{name}"' in api, name  # rendered from the docstrings by mkdocstrings
    performance = (site / "performance" / "index.html").read_text(encoding="utf-8")
    assert "GPU readiness" in performance  # benchmarks/README.md, included, not copied


@requires_chromium
@pytest.mark.parametrize("page", ["index.html", "commands/generate/index.html"])
def test_the_home_page_and_a_command_page_render(site, page, tmp_path):
    shot = tmp_path / "page.png"
    chromium(tmp_path, f"--screenshot={shot}", (site / page).as_uri())
    image = Image.open(shot).convert("RGB")
    if page == "index.html":  # a short page: the first screen holds the header, the navigation and the text
        assert image.size == (WIDTH, HEIGHT) and len(image.getcolors(1 << 24)) > 50
        background = Image.new("RGB", image.size, image.getpixel((WIDTH // 2, HEIGHT - 1)))
        inked = ImageChops.difference(image, background).convert("L").point(lambda v: 255 if v > 24 else 0)
        assert inked.crop((0, 0, WIDTH, HEIGHT // 4)).getbbox() is not None
        assert sum(inked.histogram()[255:]) > 0.01 * WIDTH * HEIGHT
    else:
        assert_inked(image)
