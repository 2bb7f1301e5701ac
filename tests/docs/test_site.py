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


def test_the_readmes_quickstart_parses_as_written():
    """Every command of the README's quickstart is a valid command line, its grid a valid grid, its Python example
    valid Python naming the API's functions (running them on a GPU-sized model is the full-scale journey's job)."""
    import shlex

    import yaml

    from synthbridge.cli import build_parser
    from synthbridge.experiments import ExperimentConfig

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quickstart = readme[readme.index("## Quickstart on your own data"):readme.index("## What the embedded study found")]
    blocks = dict((lang, []) for lang in ("bash", "yaml", "python"))
    for lang, body in re.findall(r"```(\w+)\n(.*?)```", quickstart, re.S):
        blocks[lang].append(body)
    commands = [line.split("#")[0].strip() for line in blocks["bash"][0].splitlines() if line.strip()]
    assert len(commands) == 4 and all(c.startswith("synthbridge ") for c in commands)
    parser = build_parser()
    for command in commands:
        assert parser.parse_args(shlex.split(command)[1:]).command == shlex.split(command)[1], command
    grid = ExperimentConfig.from_dict(yaml.safe_load(blocks["yaml"][0]))
    grid.check()
    assert "synthbridge.run" in blocks["python"][0]
    compile(blocks["python"][0], "README.md", "exec")
