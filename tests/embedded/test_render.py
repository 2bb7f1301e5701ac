import numpy as np
import pytest
from PIL import Image

from synthbridge.data import load_dataset, load_synthetic
from synthbridge.embedded.render import RenderConfig, render_folder
from synthbridge.errors import UserError
from synthbridge.io import read_jsonl


def test_render_writes_a_loadable_synthetic_folder(tmp_path):
    summary = render_folder(RenderConfig(dataset="digits", per_class=3, out=str(tmp_path / "r")))
    assert summary["images"] == 30
    lines = read_jsonl(tmp_path / "r" / "manifest.jsonl")
    assert len(lines) == 30 and {line["class"] for line in lines} == {str(d) for d in range(10)}
    image = Image.open(tmp_path / "r" / lines[0]["path"])
    assert image.size == (32, 32)
    pixels = np.asarray(image.convert("L"))
    assert pixels[0].mean() < 30 and pixels.max() > 200  # white glyph on black
    images = load_synthetic(tmp_path / "r", load_dataset("digits").classes)
    assert len(images) == 30


def test_render_resumes_and_refuses_other_parameters(tmp_path):
    cfg = RenderConfig(dataset="digits", per_class=2, out=str(tmp_path / "r"))
    render_folder(cfg)
    victim = tmp_path / "r" / "3" / "00001.png"
    before = victim.read_bytes()
    victim.unlink()
    summary = render_folder(cfg)
    assert summary["rendered_now"] == 1 and victim.read_bytes() == before  # the same image, redrawn alone
    with pytest.raises(UserError, match="other seed"):
        render_folder(RenderConfig(dataset="digits", per_class=2, out=str(tmp_path / "r"), seed=5))
    more = render_folder(RenderConfig(dataset="digits", per_class=4, out=str(tmp_path / "r")))
    assert more["images"] == 40 and more["rendered_now"] == 20


def test_render_needs_single_character_classes(tmp_path):
    from helpers import write_imagefolder

    root = write_imagefolder(tmp_path / "d", ["cat", "dog"])
    with pytest.raises(UserError, match="single characters"):
        render_folder(RenderConfig(dataset=f"imagefolder:{root}", per_class=1, out=str(tmp_path / "r")))
